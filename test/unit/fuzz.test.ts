// Issue 8: bounded, seeded fuzzing of the two parsers that take untrusted input. The bundle reader
// (verify, inspect) meets damaged and hostile tars: it must never crash (only a report, or a
// BundleFormatError that the CLI turns into exit 3), never accept a changed bundle as intact, stay
// in bounded memory, and never write anything. The reference parser meets random strings: it
// throws only ReferenceError, and what it accepts round-trips. A failing case prints its seed and id.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetadata, BundleFormatError } from '../../src/bundle/reader.js';
import { verifyBundle } from '../../src/verify/verify.js';
import { summarize } from '../../src/commands/inspect.js';
import { formatReference, parseReference, ReferenceError } from '../../src/reference/reference.js';
import { CLI, tempDir } from '../helpers/cli.js';
import { prng } from '../helpers/prng.js';
import { readTar, writeTar, type TarEntry } from '../helpers/tar-edit.js';
import { writeTinyBundle } from '../helpers/tiny-bundle.js';

const SEED = 0x5eed8;
const RANDOM_CASES = 90; // plus ~37 crafted, and ~23 CLI runs: ~150 cases in all
const TIME_BOX_MS = 30_000; // fuse: cases left when it blows are skipped (at least MIN_CASES must run)
const MIN_CASES = 60;
const CASE_TIMEOUT_MS = 10_000;
const MAX_RETAINED = 128 * 1024 * 1024; // live heap and buffers after all cases and a collection; the CLI runs below measure peaks
const MAX_CHILD_RSS_KB = 300 * 1024;

let work: { path: string; remove: () => Promise<void> };
let base: Buffer;
let sidecar: string;
let entries: TarEntry[];
let headers: Array<{ offset: number; name: string; size: number }>;

/** Header offsets of a tar, walked by block arithmetic alone. */
function walk(buf: Buffer): Array<{ offset: number; name: string; size: number }> {
  const out = [];
  for (let off = 0; off + 512 <= buf.length;) {
    const block = buf.subarray(off, off + 512);
    if (block.every((b) => b === 0)) break;
    const name = block.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(block.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    out.push({ offset: off, name, size });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** Recomputes a ustar header checksum, so a mutation gets past it to the fields behind. */
function fixChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block.subarray(0, 512)) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

/** A raw ustar header, for entries node-tar would refuse to write (devices, bad sizes, odd names). */
function rawHeader(o: {
  name: string | Buffer;
  size?: number;
  type: string;
  linkname?: string;
  sizeField?: Buffer;
}): Buffer {
  const h = Buffer.alloc(512);
  (typeof o.name === 'string' ? Buffer.from(o.name, 'latin1') : o.name).copy(h, 0, 0, 100);
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  if (o.sizeField) o.sizeField.copy(h, 124, 0, 12);
  else h.write(`${(o.size ?? 0).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write(o.type, 156, 'latin1');
  if (o.linkname) h.write(o.linkname, 157, 100, 'latin1');
  h.write('ustar\u000000', 257, 'latin1');
  fixChecksum(h);
  return h;
}
const pad = (data: Buffer) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
const raw = (header: Buffer, data = Buffer.alloc(0)) => Buffer.concat([header, pad(data)]);
const END = Buffer.alloc(1024);
/** The base archive's bytes from entry `i` on (its header included), end marker excluded. */
const tail = (i: number) => base.subarray(headers[i]!.offset, base.length - 1024);
const metadataEnd = () => headers[1]!.offset;
const layerHex = () =>
  entries.find((e) => e.path.startsWith('blobs/sha256/') && e.data.length > 300)!.path.slice('blobs/sha256/'.length);

/** Rewrites the bundle with a mutated metadata document (same writer as tar-edit: valid headers). */
function withMetadata(mutate: (m: Record<string, any>) => unknown): Buffer {
  const meta = JSON.parse(entries[0]!.data.toString()) as Record<string, any>;
  const replaced = mutate(meta);
  const text = typeof replaced === 'string' ? replaced : JSON.stringify(replaced ?? meta);
  const file = join(work.path, 'scratch-meta.tar');
  writeTar(file, [{ ...entries[0]!, data: Buffer.from(text) }, ...entries.slice(1)]);
  return readFileSync(file);
}

interface Case {
  id: string;
  bytes: Buffer;
  /** Run this one through the CLI too (verify and/or inspect). */
  cli?: Array<'verify' | 'inspect'>;
}

/** Hostile or broken archives written by hand: the reader's refusal list, one by one. */
function craftedCases(): Case[] {
  const meta = base.subarray(0, metadataEnd());
  const hex = layerHex();
  const both: Array<'verify' | 'inspect'> = ['verify', 'inspect'];
  return [
    {
      id: 'symlink-as-blob',
      bytes: Buffer.concat([
        meta,
        raw(rawHeader({ name: `blobs/sha256/${hex}`, type: '2', linkname: '/etc/passwd' })),
        tail(1),
        END,
      ]),
      cli: ['verify'],
    },
    {
      id: 'hardlink-escape',
      bytes: Buffer.concat([
        meta,
        raw(rawHeader({ name: `blobs/sha256/${hex}`, type: '1', linkname: '../../escape-hardlink' })),
        tail(1),
        END,
      ]),
    },
    {
      id: 'absolute-path',
      bytes: Buffer.concat([
        meta,
        raw(rawHeader({ name: '/tmp/airgap-fuzz-escape-abs', size: 5, type: '0' }), Buffer.from('evil\n')),
        tail(1),
        END,
      ]),
      cli: ['verify'],
    },
    {
      id: 'dotdot-path',
      bytes: Buffer.concat([
        meta,
        raw(rawHeader({ name: '../airgap-fuzz-escape-dotdot', size: 5, type: '0' }), Buffer.from('evil\n')),
        tail(1),
        END,
      ]),
    },
    {
      id: 'dotdot-inside-blobs',
      bytes: Buffer.concat([
        meta,
        raw(
          rawHeader({ name: 'blobs/sha256/../../../airgap-fuzz-escape-deep', size: 5, type: '0' }),
          Buffer.from('evil\n'),
        ),
        tail(1),
        END,
      ]),
    },
    {
      id: 'fifo',
      bytes: Buffer.concat([meta, raw(rawHeader({ name: `blobs/sha256/${hex}`, type: '6' })), tail(1), END]),
      cli: ['verify'],
    },
    {
      id: 'char-device',
      bytes: Buffer.concat([meta, raw(rawHeader({ name: `blobs/sha256/${hex}`, type: '3' })), tail(1), END]),
    },
    { id: 'duplicate-metadata', bytes: Buffer.concat([meta, meta, tail(1), END]) },
    {
      id: 'duplicate-blob',
      bytes: Buffer.concat([base.subarray(0, base.length - 1024), tail(headers.length - 1), END]),
    },
    { id: 'metadata-not-first', bytes: Buffer.concat([tail(1), meta, END]), cli: ['inspect'] },
    {
      id: 'metadata-claims-40MiB',
      bytes: Buffer.concat([
        rawHeader({ name: 'airgap-bundle.json', size: 40 * 1024 * 1024, type: '0' }),
        entries[0]!.data,
        END,
      ]),
      cli: both,
    },
    {
      id: 'blob-claims-8GiB',
      bytes: Buffer.concat([
        meta,
        rawHeader({ name: `blobs/sha256/${hex}`, type: '0', sizeField: Buffer.from('77777777777\0', 'latin1') }),
        Buffer.alloc(4096),
        END,
      ]),
      cli: ['verify'],
    },
    {
      id: 'base256-huge-size',
      bytes: Buffer.concat([
        meta,
        rawHeader({
          name: `blobs/sha256/${hex}`,
          type: '0',
          sizeField: Buffer.from([0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        }),
        Buffer.alloc(1024),
        END,
      ]),
      cli: ['verify'],
    },
    {
      id: 'base256-negative-size',
      bytes: Buffer.concat([
        meta,
        rawHeader({ name: `blobs/sha256/${hex}`, type: '0', sizeField: Buffer.alloc(12, 0xff) }),
        Buffer.alloc(1024),
        END,
      ]),
      cli: ['verify'],
    },
    (() => {
      const pax = Buffer.from('30 path=../../airgap-fuzz-pax\n');
      return {
        id: 'pax-path-escape',
        bytes: Buffer.concat([
          meta,
          raw(rawHeader({ name: 'PaxHeader', size: pax.length, type: 'x' }), pax),
          raw(rawHeader({ name: 'x', size: 5, type: '0' }), Buffer.from('evil\n')),
          tail(1),
          END,
        ]),
        cli: ['verify'] as Array<'verify' | 'inspect'>,
      };
    })(),
    (() => {
      const big = Buffer.alloc(100 * 1024, 0x41);
      return {
        id: 'pax-100KiB',
        bytes: Buffer.concat([
          meta,
          raw(rawHeader({ name: 'PaxHeader', size: big.length, type: 'x' }), big),
          tail(1),
          END,
        ]),
      };
    })(),
    (() => {
      const pax = Buffer.from('21 size=99999999999\n');
      return {
        id: 'pax-size-override',
        bytes: Buffer.concat([
          meta,
          raw(rawHeader({ name: 'PaxHeader', size: pax.length, type: 'x' }), pax),
          tail(1),
          END,
        ]),
      };
    })(),
    (() => {
      const pax = Buffer.from('11 size=-5\n');
      return {
        id: 'pax-negative-size',
        bytes: Buffer.concat([
          meta,
          raw(rawHeader({ name: 'PaxHeader', size: pax.length, type: 'x' }), pax),
          tail(1),
          END,
        ]),
      };
    })(),
    (() => {
      const long = Buffer.from('../../airgap-fuzz-gnu-long\0');
      return {
        id: 'gnu-long-name-escape',
        bytes: Buffer.concat([
          meta,
          raw(rawHeader({ name: '././@LongLink', size: long.length, type: 'L' }), long),
          raw(rawHeader({ name: 'x', size: 5, type: '0' }), Buffer.from('evil\n')),
          tail(1),
          END,
        ]),
        cli: ['verify'] as Array<'verify' | 'inspect'>,
      };
    })(),
    {
      id: 'control-chars-in-name',
      bytes: Buffer.concat([
        meta,
        raw(rawHeader({ name: Buffer.from('\x1b[31m\x07blobs/\nevil\r'), size: 1, type: '0' }), Buffer.from('x')),
        tail(1),
        END,
      ]),
    },
    { id: 'gzip-compressed', bytes: gzipSync(base), cli: ['verify'] },
    { id: 'empty-file', bytes: Buffer.alloc(0), cli: ['inspect'] },
    { id: 'only-end-marker', bytes: Buffer.alloc(1024) },
    { id: 'random-4KiB', bytes: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)) },
    {
      id: 'metadata-deep-nesting',
      bytes: withMetadata(() => `${'['.repeat(100_000)}${']'.repeat(100_000)}`),
      cli: ['inspect'],
    },
    {
      id: 'metadata-platform-null',
      bytes: withMetadata((m) => void (m.images[0].platforms = [null])),
      cli: ['inspect'],
    },
    {
      id: 'metadata-platform-string',
      bytes: withMetadata((m) => void (m.images[0].platforms = ['linux/amd64'])),
      cli: ['inspect'],
    },
    { id: 'metadata-no-tool', bytes: withMetadata((m) => void delete m.tool), cli: ['inspect'] },
    {
      id: 'metadata-filter-not-a-list',
      bytes: withMetadata((m) => void (m.platforms = 'linux/amd64')),
      cli: ['inspect'],
    },
    {
      id: 'metadata-bytes-not-a-number',
      bytes: withMetadata((m) => void (m.images[0].bytes = 'many')),
      cli: ['inspect'],
    },
    { id: 'metadata-media-type-number', bytes: withMetadata((m) => void (m.images[1].mediaType = 42)) },
    {
      id: 'metadata-delta-against-string',
      bytes: withMetadata((m) => void (m.delta = { against: 'earlier.tar' })),
      cli: ['inspect'],
    },
    { id: 'metadata-negative-size', bytes: withMetadata((m) => void (m.blobs[0].size = -1)) },
    { id: 'metadata-future-version', bytes: withMetadata((m) => void (m.formatVersion = 99)) },
    {
      id: 'metadata-unknown-blob',
      bytes: withMetadata((m) => void m.images[0].blobs.push(`sha256:${'e'.repeat(64)}`)),
    },
    {
      id: 'index-json-5MiB',
      bytes: (() => {
        const file = join(work.path, 'scratch-index.tar');
        writeTar(
          file,
          entries.map((e) => (e.path === 'index.json' ? { ...e, data: Buffer.alloc(5 * 1024 * 1024, 0x20) } : e)),
        );
        return readFileSync(file);
      })(),
    },
  ];
}

/** Seeded random damage of the valid bundle, in four families. */
function randomCase(rnd: ReturnType<typeof prng>, n: number): Case {
  const bytes = Buffer.from(base);
  const family = n % 4;
  if (family === 0) {
    // Tar headers: a field overwritten, half the time with the checksum repaired so parsing goes on.
    const h = rnd.pick(headers);
    const fields: Array<[number, number]> = [
      [0, 100],
      [100, 8],
      [124, 12],
      [156, 1],
      [157, 100],
      [257, 8],
      [345, 155],
    ];
    const [start, len] = rnd.pick(fields);
    const flips = rnd.int(1, 3);
    for (let i = 0; i < flips; i++) {
      const at = h.offset + start + rnd.int(0, len - 1);
      const b = rnd.pick([0, 0x2f, 0x2e, 0x37, 0x80, 0xff, rnd.int(1, 255)]);
      bytes[at] = b === bytes[at] ? b ^ 0x01 : b;
    }
    if (rnd.next() < 0.5) fixChecksum(bytes.subarray(h.offset, h.offset + 512));
    return { id: `header-${n}@${h.name}`, bytes };
  }
  if (family === 1) {
    // JSON documents (metadata, oci-layout, index.json, manifests): one byte replaced, same length.
    const docs = headers.filter((h) => h.size > 0 && h.size < 8192 && (!h.name.startsWith('blobs/') || isJsonBlob(h)));
    const h = rnd.pick(docs);
    const at = h.offset + 512 + rnd.int(0, h.size - 1);
    const old = bytes[at]!;
    let b = rnd.pick([0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x2d, 0x20, 0x00, 0xff, rnd.int(0, 255)]);
    if (b === old) b = old ^ 0x01;
    bytes[at] = b;
    return { id: `json-${n}@${h.name}+${at - h.offset - 512}`, bytes };
  }
  if (family === 2) {
    const at = rnd.int(0, base.length - 1);
    return { id: `truncate-${n}@${at}`, bytes: bytes.subarray(0, at) };
  }
  const flips = rnd.int(1, 4);
  const at: number[] = [];
  for (let i = 0; i < flips; i++) {
    const p = rnd.int(0, base.length - 1);
    bytes[p] = bytes[p]! ^ rnd.int(1, 255);
    at.push(p);
  }
  return { id: `flip-${n}@${at.join(',')}`, bytes };
}
const isJsonBlob = (h: { name: string }) => {
  const e = entries.find((x) => x.path === h.name);
  return e !== undefined && e.data.length > 0 && e.data[0] === 0x7b;
};

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS)),
    ),
  ]).finally(() => clearTimeout(timer));
}

/** The in-process oracle; returns what went wrong, or undefined. */
async function judge(c: Case, file: string): Promise<string | undefined> {
  try {
    const report = await withTimeout(verifyBundle(file), 'verifyBundle');
    if (report.ok && !c.bytes.equals(base)) return 'verify accepted a changed bundle as intact';
  } catch (err) {
    if (!(err instanceof BundleFormatError))
      return `verifyBundle threw ${(err as Error).name}: ${(err as Error).message}`;
  }
  try {
    const meta = await withTimeout(readMetadata(file), 'readMetadata');
    JSON.stringify(summarize(meta));
  } catch (err) {
    if (!(err instanceof BundleFormatError))
      return `readMetadata/summarize threw ${(err as Error).name}: ${(err as Error).message}`;
  }
  return undefined;
}

interface CliRun {
  code: number | null;
  stderr: string;
  maxRssKb: number;
}
// Peak RSS of the child itself: VmHWM of its own address space. (getrusage's maxrss would also count
// the parent's memory, which the child briefly shares between fork and exec.)
const RSS_PROBE = `data:text/javascript,${encodeURIComponent(
  'import { readFileSync } from "node:fs"; process.on("exit", () => { const m = /VmHWM:\\s*(\\d+)/.exec(readFileSync("/proc/self/status", "utf8")); process.stderr.write(`\\n@@maxrss=${m ? m[1] : 0}\\n`); });',
)}`;
function cli(args: string[], cwd: string): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', RSS_PROBE, CLI, ...args], {
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const m = /\n@@maxrss=(\d+)\n/.exec(stderr);
      resolvePromise({ code, stderr: stderr.replace(/\n@@maxrss=\d+\n/, ''), maxRssKb: m ? Number(m[1]) : Infinity });
    });
  });
}

/** Every file under `dir`, with sizes: what a run must leave unchanged. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const rec = (d: string) => {
    for (const f of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, f.name);
      if (f.isDirectory()) rec(p);
      else out.push(`${p} ${statSync(p).size}`);
    }
  };
  rec(dir);
  return out.sort();
}

const ESCAPES = [
  '/tmp/airgap-fuzz-escape-abs',
  'airgap-fuzz-escape-dotdot',
  'airgap-fuzz-escape-deep',
  'airgap-fuzz-pax',
  'airgap-fuzz-gnu-long',
  'escape-hardlink',
];

beforeAll(async () => {
  work = await tempDir('airgap-fuzz-');
  const file = join(work.path, 'base', 'b.tar');
  await writeTinyBundle(join(work.path, 'base'), file, SEED);
  base = readFileSync(file);
  sidecar = readFileSync(`${file}.sha256`, 'utf8');
  entries = readTar(file);
  headers = walk(base);
});

afterAll(async () => {
  await work?.remove();
});

describe('bundle reader fuzzing', () => {
  it('the unmutated base bundle verifies, so every rejection below is caused by the mutation', async () => {
    const report = await verifyBundle(join(work.path, 'base', 'b.tar'));
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(headers.length).toBeGreaterThan(10);
  });

  it(`~150 damaged and hostile bundles (seed ${SEED}): no crash, no damaged bundle accepted, bounded time and memory`, async () => {
    const rnd = prng(SEED);
    const cases = [...craftedCases(), ...Array.from({ length: RANDOM_CASES }, (_, n) => randomCase(rnd, n))];
    const dir = join(work.path, 'cases');
    mkdirSync(dir);
    const started = Date.now();
    // What stays alive after a garbage collection (heap, buffers, the readers' 16 MiB rings): a
    // reader that kept anything per bundle would grow it with every case. The rings are freed
    // lazily (and only once their hashing thread has exited), so settle and collect first.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // Shared rings are released only once their hashing thread's isolate is gone, which lags
    // behind terminate(): collect a few times, so only memory that is really kept remains.
    const retained = async () => {
      let bytes = Infinity;
      for (let round = 0; round < 6 && bytes >= MAX_RETAINED; round++) {
        await new Promise((r) => setTimeout(r, 300));
        gc();
        const m = process.memoryUsage();
        bytes = m.heapUsed + m.arrayBuffers;
      }
      return bytes;
    };
    const failures: string[] = [];
    let ran = 0;
    const queue = [...cases];
    // Two lanes, each with its own file: verify waits on a hashing thread much of the time.
    await Promise.all(
      [0, 1].map(async (lane) => {
        const file = join(dir, `lane-${lane}.tar`);
        for (let c = queue.shift(); c && Date.now() - started < TIME_BOX_MS; c = queue.shift()) {
          writeFileSync(file, c.bytes);
          writeFileSync(`${file}.sha256`, sidecar);
          const problem = await judge(c, file).catch((err: Error) => `harness: ${err.message}`);
          if (problem) failures.push(`${c.id}: ${problem}`);
          ran++;
        }
      }),
    );
    const after = await retained();
    if (ran < cases.length)
      console.warn(`fuzz: time box of ${TIME_BOX_MS} ms reached after ${ran} of ${cases.length} cases`);
    expect(ran).toBeGreaterThanOrEqual(Math.min(MIN_CASES, cases.length));
    expect(after).toBeLessThan(MAX_RETAINED);
    expect(failures).toEqual([]);
  });

  it('through the CLI: exit 0 or 3 only, no stack trace, bounded memory, nothing written anywhere', async () => {
    const rnd = prng(SEED + 1);
    const chosen = [
      ...craftedCases().filter((c) => c.cli),
      ...Array.from({ length: 4 }, (_, n) => ({
        ...randomCase(rnd, n),
        cli: [n % 2 ? 'inspect' : 'verify'] as Array<'verify' | 'inspect'>,
      })),
    ];
    const root = join(work.path, 'cli');
    mkdirSync(root);
    const jobs: Array<() => Promise<string | undefined>> = [];
    for (const [i, c] of chosen.entries()) {
      const dir = join(root, `case-${i}`);
      mkdirSync(dir);
      const file = join(dir, 'b.tar');
      writeFileSync(file, c.bytes);
      writeFileSync(`${file}.sha256`, sidecar);
      for (const command of c.cli!) {
        jobs.push(async () => {
          const before = snapshot(work.path);
          const r = await cli([command, 'b.tar'], dir);
          const after = snapshot(work.path);
          const what = `${c.id} (${command}): exit ${r.code}`;
          if (command === 'verify' && r.code !== 3) return `${what}, expected 3: ${r.stderr.trim().split('\n').pop()}`;
          if (command === 'inspect' && r.code !== 0 && r.code !== 3)
            return `${what}, expected 0 or 3: ${r.stderr.trim().split('\n').pop()}`;
          if (/^\s+at \S+ \(/m.test(r.stderr) || /\b(TypeError|RangeError|SyntaxError|ReferenceError)\b/.test(r.stderr))
            return `${what}, internal error shown: ${r.stderr.trim().split('\n').pop()}`;
          if (r.maxRssKb > MAX_CHILD_RSS_KB) return `${what}, peak RSS ${r.maxRssKb} KiB`;
          if (JSON.stringify(before) !== JSON.stringify(after)) return `${what}, files changed under ${work.path}`;
          return undefined;
        });
      }
    }
    // Two at a time: the machine has two cores.
    const failures: string[] = [];
    const queue = [...jobs];
    await Promise.all(
      [0, 1].map(async () => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          const problem = await job();
          if (problem) failures.push(problem);
        }
      }),
    );
    expect(failures).toEqual([]);
    // Where the hostile names point (relative ones climb at most three levels from a case folder,
    // which stays inside work.path or reaches the temp folder): nothing was created there.
    for (const e of ESCAPES) {
      const places = e.startsWith('/') ? [e] : [root, work.path, tmpdir()].map((d) => join(d, e));
      for (const p of places) expect(existsSync(p), p).toBe(false);
    }
  });
});

describe('reference parser fuzzing', () => {
  const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFZ._-/:@_-/:.@ \t\n%[]éß\u0000';
  const PIECES = [
    'docker.io',
    'ghcr.io',
    'localhost',
    'localhost:5000',
    '127.0.0.1:5000',
    '[::1]:5000',
    'registry-1.docker.io',
    'index.docker.io',
    'library',
    'siderolabs',
    'installer',
    'a__b',
    'a--b',
    'a.b',
    'UPPER',
    'v1.8.0',
    'latest',
    `sha256:${'a'.repeat(64)}`,
    `sha512:${'b'.repeat(128)}`,
    `sha256:${'A'.repeat(64)}`,
    'sha256:abc',
    '..',
    '',
    '-x',
    'x-',
    '_',
  ];
  const SEPARATORS = ['/', ':', '@', '/', '/', ''];

  function candidate(rnd: ReturnType<typeof prng>): string {
    if (rnd.next() < 0.4)
      return Array.from({ length: rnd.int(0, 40) }, () => ALPHABET[rnd.int(0, ALPHABET.length - 1)]).join('');
    let s = '';
    for (let i = rnd.int(1, 6); i > 0; i--) s += rnd.pick(PIECES) + (i > 1 ? rnd.pick(SEPARATORS) : '');
    return s;
  }

  it(`3000 random strings (seed ${SEED}): only ReferenceError is thrown, and accepted references round-trip`, () => {
    const rnd = prng(SEED);
    const failures: string[] = [];
    let accepted = 0;
    for (let n = 0; n < 3000; n++) {
      const input = candidate(rnd);
      let ref;
      try {
        ref = parseReference(input);
      } catch (err) {
        if (!(err instanceof ReferenceError))
          failures.push(`${JSON.stringify(input)}: threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
        else if (!err.message.includes('invalid image reference'))
          failures.push(`${JSON.stringify(input)}: unhelpful message ${err.message}`);
        continue;
      }
      accepted++;
      const text = formatReference(ref);
      let again;
      try {
        again = parseReference(text);
      } catch (err) {
        failures.push(`${JSON.stringify(input)} → ${text}: does not parse again (${(err as Error).message})`);
        continue;
      }
      if (JSON.stringify(again) !== JSON.stringify(ref))
        failures.push(
          `${JSON.stringify(input)} → ${text}: parses to ${JSON.stringify(again)}, not ${JSON.stringify(ref)}`,
        );
      if (formatReference(again) !== text)
        failures.push(`${JSON.stringify(input)} → ${text}: formats differently the second time`);
    }
    expect(failures).toEqual([]);
    expect(accepted).toBeGreaterThan(100);
  });

  it('long adversarial inputs are answered quickly (no catastrophic backtracking)', () => {
    const inputs = [
      'a'.repeat(50_000),
      `${'a-'.repeat(25_000)}!`,
      `${'a.'.repeat(25_000)}:tag`,
      `${'a__'.repeat(16_000)}/x`,
      `host.${'a-'.repeat(20_000)}/x:y`,
      `${'a/'.repeat(25_000)}`,
      `x:${'1'.repeat(50_000)}/y`,
      `x@sha256:${'a'.repeat(50_000)}`,
    ];
    for (const input of inputs) {
      const t0 = performance.now();
      try {
        parseReference(input);
      } catch (err) {
        expect(err).toBeInstanceOf(ReferenceError);
      }
      expect(performance.now() - t0, `${input.slice(0, 20)}… (${input.length} chars)`).toBeLessThan(200);
    }
  });
});
