// Damaged and hostile bundles for fuzzing the bundle reader, in two kinds: the hostile corpus of
// hostile-bundles.ts (each attack defined there once, its sidecar matching the crafted bytes), and
// what is fuzzing's own: seeded random damage of one valid bundle, and a few crafted documents and
// degenerate files that are not attacks on the tar structure. Shared by the in-process fuzzing (unit)
// and the runs of the built CLI (e2e).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostileCases, makeSample, type HostileCase, type Sample } from './hostile-bundles.js';
import { prng } from './prng.js';
import { readTar, writeTar, type TarEntry } from './tar-edit.js';

export interface FuzzCase {
  id: string;
  bytes: Buffer;
  /** The sidecar to put beside it; the base bundle's when not given. */
  sidecar?: string;
  /** The bundle differs from the base, so verify must not call it intact. */
  changed: boolean;
  /** Seeded random damage (randomCase), rather than a crafted case. */
  random?: boolean;
  /** What verify's refusal must name (the corpus's expectation): the reason, not just any refusal. */
  names?: RegExp;
  /** Run this one through the CLI too (verify and/or inspect). */
  cli?: Array<'verify' | 'inspect'>;
  /** Names hostile entries point at: none may exist anywhere after the runs. */
  escapes?: string[];
}

export interface FuzzBase {
  sample: Sample;
  file: string;
  bytes: Buffer;
  sidecar: string;
  entries: TarEntry[];
  headers: Array<{ offset: number; name: string; size: number }>;
  /** Scratch space for cases that are written through files. */
  scratch: string;
}

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

/** The valid bundle the random damage starts from (the hostile corpus's sample, with this seed). */
export async function fuzzBase(dir: string, seed: number): Promise<FuzzBase> {
  const sample = await makeSample(dir, seed);
  const file = join(dir, 'sample.tar');
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch, { recursive: true });
  return {
    sample,
    file,
    bytes: sample.bytes,
    // As if the bundle were b.tar, the name every case is written under.
    sidecar: readFileSync(`${file}.sha256`, 'utf8').replace(/ sample\.tar$/m, ' b.tar'),
    entries: readTar(file),
    headers: walk(sample.bytes),
    scratch,
  };
}

/** Recomputes a ustar header checksum, so a mutation gets past it to the fields behind. */
function fixChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block.subarray(0, 512)) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

/**
 * The hostile corpus's tar-level, structural, repository and metadata cases, built in `dir`. The
 * exhaustion cases and any case with a time bound are large: they are the CLI suites' to run.
 * `marker` goes into every name a hostile entry points at.
 */
export function corpusCases(base: FuzzBase, dir: string, marker: string): FuzzCase[] {
  const wanted = new Set<HostileCase['cls']>(['tar', 'tampered-structure', 'malformed-metadata', 'wrong-repository']);
  const bounded = (c: HostileCase) => Object.values(c.expected).some((e) => e?.maxMs !== undefined);
  return hostileCases(base.sample, marker)
    .filter((c) => wanted.has(c.cls) && !bounded(c))
    .map((c) => {
      const at = join(dir, c.id);
      mkdirSync(at, { recursive: true });
      const built = c.build(at);
      const exit = c.expected.verify?.exit ?? c.expected.inspect?.exit;
      if (exit === undefined) throw new Error(`${c.id}: the case says nothing about verify or inspect`);
      return {
        id: c.id,
        bytes: readFileSync(built.bundle),
        sidecar: readFileSync(`${built.bundle}.sha256`, 'utf8'),
        changed: exit !== 0,
        names: c.expected.verify?.names,
        cli: c.expected.verify ? ['verify'] : ['inspect'],
        escapes: built.escapes,
      };
    });
}

/** Damaged documents and degenerate files: what fuzzing adds to the hostile corpus. */
export function craftedCases(base: FuzzBase): FuzzCase[] {
  const { entries } = base;
  /** Rewrites the bundle with a mutated metadata document (node-tar's header encoder: valid headers). */
  const withMetadata = (mutate: (m: Record<string, any>) => unknown): Buffer => {
    const meta = JSON.parse(entries[0]!.data.toString()) as Record<string, any>;
    const replaced = mutate(meta);
    const text = typeof replaced === 'string' ? replaced : JSON.stringify(replaced ?? meta);
    const file = join(base.scratch, 'scratch-meta.tar');
    writeTar(file, [{ ...entries[0]!, data: Buffer.from(text) }, ...entries.slice(1)]);
    return readFileSync(file);
  };
  const cases: Array<Omit<FuzzCase, 'changed'>> = [
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
        const file = join(base.scratch, 'scratch-index.tar');
        writeTar(
          file,
          entries.map((e) => (e.path === 'index.json' ? { ...e, data: Buffer.alloc(5 * 1024 * 1024, 0x20) } : e)),
        );
        return readFileSync(file);
      })(),
    },
  ];
  return cases.map((c) => ({ ...c, changed: !c.bytes.equals(base.bytes) }));
}

/** Seeded random damage of the valid bundle, in four families. */
export function randomCase(base: FuzzBase, rnd: ReturnType<typeof prng>, n: number): FuzzCase {
  const { headers, entries } = base;
  const bytes = Buffer.from(base.bytes);
  const family = n % 4;
  const changed = (c: { id: string; bytes: Buffer }): FuzzCase => ({
    ...c,
    changed: !c.bytes.equals(base.bytes),
    random: true,
  });
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
    return changed({ id: `header-${n}@${h.name}`, bytes });
  }
  if (family === 1) {
    // JSON documents (metadata, oci-layout, index.json, manifests): one byte replaced, same length.
    const isJsonBlob = (h: { name: string }) => {
      const e = entries.find((x) => x.path === h.name);
      return e !== undefined && e.data.length > 0 && e.data[0] === 0x7b;
    };
    const docs = headers.filter((h) => h.size > 0 && h.size < 8192 && (!h.name.startsWith('blobs/') || isJsonBlob(h)));
    const h = rnd.pick(docs);
    const at = h.offset + 512 + rnd.int(0, h.size - 1);
    const old = bytes[at]!;
    let b = rnd.pick([0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x2d, 0x20, 0x00, 0xff, rnd.int(0, 255)]);
    if (b === old) b = old ^ 0x01;
    bytes[at] = b;
    return changed({ id: `json-${n}@${h.name}+${at - h.offset - 512}`, bytes });
  }
  if (family === 2) {
    const at = rnd.int(0, base.bytes.length - 1);
    return changed({ id: `truncate-${n}@${at}`, bytes: bytes.subarray(0, at) });
  }
  const flips = rnd.int(1, 4);
  const at: number[] = [];
  for (let i = 0; i < flips; i++) {
    const p = rnd.int(0, base.bytes.length - 1);
    bytes[p] = bytes[p]! ^ rnd.int(1, 255);
    at.push(p);
  }
  return changed({ id: `flip-${n}@${at.join(',')}`, bytes });
}
