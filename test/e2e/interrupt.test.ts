// Interruptions lose nothing. A SIGKILL at any point of an export or an import, Ctrl-C, or
// a full disk must leave a state from which rerunning the same command gives exactly what an
// uninterrupted run gives, and never a partial bundle under (or beside) the final name.
import { execFileSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmdirSync,
  statfsSync,
  watch,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import type { BundleMetadata } from '../../src/bundle/format.js';
import { runCli, startCli, tempDir } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { prng } from '../helpers/prng.js';
import { catalogUnder, tagDigests, unpullableTags } from '../helpers/registry-state.js';
import { readTar } from '../helpers/tar-edit.js';
import { startWireProxy } from '../helpers/wire-proxy.js';

/** Change to explore other interruption points; a failure names the seed and the point. */
const SEED = 20240912;
const SUBSET = ['coredns/coredns', 'kube-scheduler', 'library/busybox', 'pause'];

/** Can a small filesystem be mounted here (root, and a kernel that allows tmpfs mounts)? */
const canMount = (() => {
  const probe = mkdtempSync(join(tmpdir(), 'airgap-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmdirSync(probe);
  }
})();

let work: { path: string; remove: () => Promise<void> };
let images: SampleImage[];
let upstream: RunningRegistry;
let dest: RunningRegistry;
let reference: Buffer;
let referenceSidecar: string;
let referenceMeta: BundleMetadata;
let payloadBlobs: number;
const stoppers: Array<{ stop(): Promise<void> }> = [];

const names = () => images.map((i) => i.upstream);
/** The export command every run uses: original names, fetched through `host` as a mirror. */
const exportArgs = (host: string, dir: string) => [
  'export',
  ...names(),
  '--registry-mirror',
  `*=http://${host}`,
  '-o',
  join(dir, 'b.tar'),
  '--cache-dir',
  join(dir, 'cache'),
];
const listing = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f !== 'cache')
    .sort();

/** Children this file started, killed (by pid) at the end if a failed test left one running. */
const children: ChildProcess[] = [];

function spawnCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = startCli(args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DOCKER_CONFIG: '/nonexistent-docker-config', ...env },
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, closed };
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Calls `fn` as soon as a partial bundle appears in `dir` (the write phase has begun). */
function onPartial(dir: string, fn: () => void): () => void {
  const w = watch(dir, (_event, name) => {
    if (name && name.includes('.partial')) {
      w.close();
      fn();
    }
  });
  return () => w.close();
}

beforeAll(async () => {
  work = await tempDir('airgap-interrupt-');
  images = (await generateSampleImages(join(work.path, 'samples'), { layerBytes: 32 * 1024 })).filter((i) =>
    SUBSET.includes(i.repository),
  );
  [upstream, dest] = await Promise.all([startRegistry(), startRegistry()]);
  stoppers.push(upstream, dest);
  await seedRegistry(upstream, images);
  const dir = join(work.path, 'reference');
  mkdirSync(dir);
  const res = await runCli([...exportArgs(upstream.host, dir), '-q']);
  expect(res.code).toBe(0);
  reference = readFileSync(join(dir, 'b.tar'));
  referenceSidecar = readFileSync(join(dir, 'b.tar.sha256'), 'utf8');
  referenceMeta = JSON.parse(readTar(join(dir, 'b.tar'))[0]!.data.toString()) as BundleMetadata;
  payloadBlobs = referenceMeta.blobs.filter((b) => b.role === 'layer' || b.role === 'config').length;
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of stoppers.reverse()) await s.stop();
  await work?.remove();
});

/** A rerun of the same command completes and writes the very bytes of the uninterrupted export. */
async function expectRerunIdentical(
  host: string,
  dir: string,
  label: string,
): Promise<{ fetched: number; cached: number }> {
  const res = await runCli([...exportArgs(host, dir), '--json']);
  expect(res.code, `${label}: rerun failed: ${res.stderr}`).toBe(0);
  expect(
    readFileSync(join(dir, 'b.tar')).equals(reference),
    `${label}: rerun bundle differs from the uninterrupted one`,
  ).toBe(true);
  expect(readFileSync(join(dir, 'b.tar.sha256'), 'utf8')).toBe(referenceSidecar);
  const summary = JSON.parse(res.stdout) as { fetched: { blobs: number }; cached: { blobs: number } };
  expect(summary.fetched.blobs + summary.cached.blobs).toBe(payloadBlobs);
  return { fetched: summary.fetched.blobs, cached: summary.cached.blobs };
}

describe('export interrupted', () => {
  it(`SIGKILL at random points (seed ${SEED}): a rerun with the same cache writes a bundle byte-identical to an uninterrupted export`, async () => {
    const rnd = prng(SEED);
    const points = [
      { kind: 'after blob request', n: rnd.int(1, payloadBlobs) },
      { kind: 'after delay', ms: rnd.int(250, 1200) },
      // The tar is written while the blobs download: killed as soon as its temporary file appears.
      { kind: 'while writing the bundle' },
    ] as const;
    for (const [i, point] of points.entries()) {
      const label = `trial ${i} (${point.kind}${'n' in point ? ` #${point.n}` : ''}${'ms' in point ? ` ${point.ms} ms` : ''})`;
      const dir = join(work.path, `kill-export-${i}`);
      mkdirSync(dir);
      let child: ChildProcess | undefined;
      const isBlobGet = (r: { method: string; path: string }) => r.method === 'GET' && r.path.includes('/blobs/');
      const proxy = await startWireProxy(upstream.url, [
        {
          // Watches only: kills the export when the n-th blob is requested.
          match: (r) => {
            if (point.kind === 'after blob request' && isBlobGet(r) && proxy.seen.filter(isBlobGet).length === point.n)
              child?.kill('SIGKILL');
            return false;
          },
          action: { kind: 'hang' },
        },
        // For the random delay, downloads are slowed until the kill, so the kill lands inside the run.
        {
          match: (r) => point.kind === 'after delay' && child !== undefined && !child.killed && isBlobGet(r),
          action: { kind: 'delay', ms: 120 },
        },
      ]);
      stoppers.push(proxy);
      const run = spawnCli([...exportArgs(proxy.host, dir), '--concurrency', '2', '-q']);
      child = run.child;
      const closed = run.closed;
      let stopWatch = () => {};
      if (point.kind === 'after delay') setTimeout(() => run.child.kill('SIGKILL'), point.ms);
      if (point.kind === 'while writing the bundle') stopWatch = onPartial(dir, () => run.child.kill('SIGKILL'));
      const end = await closed;
      stopWatch();
      expect(end.signal, `${label}: the export was not interrupted (exit ${end.code})`).toBe('SIGKILL');
      expect(listing(dir)).not.toContain('b.tar');
      await expectRerunIdentical(proxy.host, dir, label);
      // The killed run's temporary bundle is garbage once its process is gone: the rerun removes it.
      expect(
        listing(dir).filter((n) => n.includes('.partial')),
        label,
      ).toEqual([]);
    }
  });

  it('a rerun after a SIGKILL during the write leaves only the bundle and its sidecar (no stale partial file)', async () => {
    const dir = join(work.path, 'kill-stale');
    mkdirSync(dir);
    const { child, closed } = spawnCli([...exportArgs(upstream.host, dir), '-q']);
    const stopWatch = onPartial(dir, () => child.kill('SIGKILL'));
    const end = await closed;
    stopWatch();
    expect(end.signal).toBe('SIGKILL');
    const leftover = listing(dir);
    expect(
      leftover.some((f) => f.includes('.partial')),
      `the kill should land mid-write; found ${leftover.join(', ')}`,
    ).toBe(true);
    await expectRerunIdentical(upstream.host, dir, 'after a kill mid-write');
    expect(listing(dir)).toEqual(['b.tar', 'b.tar.sha256']);
  });

  it('Ctrl-C while downloading: exit 130 at once, no bundle or temporary file, says how to resume, and resuming works', async () => {
    const dir = join(work.path, 'sigint-download');
    mkdirSync(dir);
    const proxy: FaultProxy = await startFaultProxy(upstream.url, [
      { match: (m, p) => m === 'GET' && p.includes('/blobs/'), fault: { kind: 'stall' }, times: 1 },
    ]);
    stoppers.push(proxy);
    const { child, closed } = spawnCli(exportArgs(proxy.host, dir));
    await until('a stalled blob download', () => proxy.requests.some((r) => r.faulted));
    const t0 = Date.now();
    child.kill('SIGINT');
    const end = await closed;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(end.code).toBe(130);
    expect(end.stderr).toMatch(/interrupted/i);
    expect(end.stderr).toMatch(/rerun|resume/i);
    expect(listing(dir)).toEqual([]);
    await expectRerunIdentical(proxy.host, dir, 'after Ctrl-C');
  });

  it('Ctrl-C while writing the bundle: exit 130 and the partial file is removed', async () => {
    const dir = join(work.path, 'sigint-write');
    mkdirSync(dir);
    const { child, closed } = spawnCli(exportArgs(upstream.host, dir));
    const stopWatch = onPartial(dir, () => child.kill('SIGINT'));
    const end = await closed;
    stopWatch();
    expect(end.code).toBe(130);
    expect(end.stderr).toMatch(/interrupted/i);
    expect(listing(dir)).toEqual([]);
  });
});

/** The default export: no cache, each blob written straight to its place in the partial bundle. */
const directArgs = (host: string, dir: string, refs = names()) => [
  'export',
  ...refs,
  '--registry-mirror',
  `*=http://${host}`,
  '-o',
  join(dir, 'b.tar'),
];
const NO_CACHE = { AIRGAP_BUNDLE_CACHE: '' };
const DIGEST_LINE = /^sha256:[0-9a-f]{64}$/;

/** The blobs the journal of the (single) partial bundle in `dir` lists as complete. */
function journaled(dir: string): string[] {
  const journals = readdirSync(dir).filter((f) => /^\.b\.tar\.partial-\d+\.done$/.test(f));
  if (journals.length !== 1) return [];
  return readFileSync(join(dir, journals[0]!), 'utf8')
    .split('\n')
    .filter((l) => DIGEST_LINE.test(l));
}

/** Where a blob's bytes start in the bundle: the layout is fixed, so the reference tells. */
function blobOffset(digest: string): number {
  const header = reference.indexOf(Buffer.from(`blobs/sha256/${digest.slice('sha256:'.length)}\0`));
  expect(header).toBeGreaterThan(0);
  return header + 512;
}

async function expectDirectRerunIdentical(
  host: string,
  dir: string,
  label: string,
): Promise<{ fetched: number; cached: number }> {
  const res = await runCli([...directArgs(host, dir), '--json'], { env: NO_CACHE });
  expect(res.code, `${label}: rerun failed: ${res.stderr}`).toBe(0);
  expect(
    readFileSync(join(dir, 'b.tar')).equals(reference),
    `${label}: rerun bundle differs from the uninterrupted one`,
  ).toBe(true);
  expect(readFileSync(join(dir, 'b.tar.sha256'), 'utf8')).toBe(referenceSidecar);
  expect(readdirSync(dir).sort(), `${label}: only the bundle and its sidecar are left`).toEqual([
    'b.tar',
    'b.tar.sha256',
  ]);
  const summary = JSON.parse(res.stdout) as { fetched: { blobs: number }; cached: { blobs: number } };
  expect(summary.fetched.blobs + summary.cached.blobs).toBe(payloadBlobs);
  return { fetched: summary.fetched.blobs, cached: summary.cached.blobs };
}

/** Starts the default export through a proxy that slows blob downloads, and waits until `n` blobs are complete in the partial bundle. */
async function exportUntilJournaled(
  dir: string,
  n: number,
  refs = names(),
): Promise<{ child: ChildProcess; closed: ReturnType<typeof spawnCli>['closed'] }> {
  const slow = await startWireProxy(upstream.url, [
    { match: (r) => r.method === 'GET' && r.path.includes('/blobs/'), action: { kind: 'delay', ms: 150 } },
  ]);
  stoppers.push(slow);
  const run = spawnCli([...directArgs(slow.host, dir, refs), '--concurrency', '1', '-q'], NO_CACHE);
  await until(`${n} blobs complete in the partial bundle`, () => journaled(dir).length >= n);
  return run;
}

describe('export interrupted, without a cache (the default)', () => {
  it('the same images, with no cache, give the very bytes of an export through a cache', async () => {
    const dir = join(work.path, 'direct-plain');
    mkdirSync(dir);
    const { fetched, cached } = await expectDirectRerunIdentical(upstream.host, dir, 'direct export');
    expect({ fetched, cached }).toEqual({ fetched: payloadBlobs, cached: 0 });
  });

  it('SIGKILL keeps the partial bundle and its journal; a rerun re-hashes the blobs listed, fetches a damaged one again and the rest, and writes the identical bundle', async () => {
    const dir = join(work.path, 'direct-kill');
    mkdirSync(dir);
    const { child, closed } = await exportUntilJournaled(dir, 3);
    child.kill('SIGKILL');
    expect((await closed).signal).toBe('SIGKILL');
    const listed = journaled(dir);
    expect(listed.length).toBeGreaterThanOrEqual(3);
    expect(readdirSync(dir).filter((f) => !f.startsWith('.b.tar.partial-'))).toEqual([]);
    // One byte of a listed blob flipped on disk: the journal says complete, the bytes say otherwise.
    const partial = join(
      dir,
      readdirSync(dir).find((f) => /^\.b\.tar\.partial-\d+$/.test(f))!,
    );
    const at = blobOffset(listed[0]!);
    const fd = openSync(partial, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);
    const { fetched, cached } = await expectDirectRerunIdentical(upstream.host, dir, 'after SIGKILL');
    expect(cached).toBe(listed.length - 1);
    expect(fetched).toBe(payloadBlobs - listed.length + 1);
  });

  it('a partial bundle of another export (other images) is removed, not resumed', async () => {
    const dir = join(work.path, 'direct-other');
    mkdirSync(dir);
    const { child, closed } = await exportUntilJournaled(dir, 1, names().slice(1));
    child.kill('SIGKILL');
    await closed;
    expect(journaled(dir).length).toBeGreaterThanOrEqual(1);
    const { fetched, cached } = await expectDirectRerunIdentical(upstream.host, dir, 'after an unrelated partial');
    expect({ fetched, cached }).toEqual({ fetched: payloadBlobs, cached: 0 });
  });

  it('Ctrl-C: exit 130 at once, names the partial bundle it keeps and how to resume; the rerun resumes from it', async () => {
    const dir = join(work.path, 'direct-sigint');
    mkdirSync(dir);
    const { child, closed } = await exportUntilJournaled(dir, 2);
    const t0 = Date.now();
    child.kill('SIGINT');
    const end = await closed;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(end.code).toBe(130);
    const kept = readdirSync(dir).filter((f) => /^\.b\.tar\.partial-\d+$/.test(f));
    expect(kept).toHaveLength(1);
    expect(end.stderr).toMatch(/interrupted/i);
    expect(end.stderr).toContain(join(dir, kept[0]!));
    expect(end.stderr).toMatch(/rerun the same command to resume/);
    const listed = journaled(dir);
    const { cached } = await expectDirectRerunIdentical(upstream.host, dir, 'after Ctrl-C');
    expect(cached).toBe(listed.length);
  });

  it('a blob that cannot be fetched: exit 1, the partial bundle is kept and said to be; a rerun once the registry serves it fetches only what is missing', async () => {
    const dir = join(work.path, 'direct-fail');
    mkdirSync(dir);
    // The last blob in tar order (the smallest) fails: by then the others are in.
    const last = referenceMeta.blobs.filter((b) => b.role === 'layer' || b.role === 'config').at(-1)!;
    const proxy = await startFaultProxy(upstream.url, [
      { match: (m, p) => m === 'GET' && p.endsWith(`/blobs/${last.digest}`), fault: { kind: 'status', status: 500 } },
    ]);
    stoppers.push(proxy);
    const res = await runCli([...directArgs(proxy.host, dir), '--retries', '0', '--concurrency', '1', '-q'], {
      env: NO_CACHE,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(last.digest);
    expect(res.stderr).toMatch(/partial bundle .*\.b\.tar\.partial-\d+ is kept: rerun the same command to resume/);
    const listed = journaled(dir);
    expect(listed).not.toContain(last.digest);
    expect(listed.length).toBe(payloadBlobs - 1);
    const { fetched, cached } = await expectDirectRerunIdentical(upstream.host, dir, 'after a failed blob');
    expect({ fetched, cached }).toEqual({ fetched: 1, cached: payloadBlobs - 1 });
  });
});

describe('import interrupted', () => {
  let clean: { tags: Record<string, string>; catalog: string[]; uploads: number; manifests: number };
  const importArgs = (host: string, prefix: string) => [
    'import',
    join(work.path, 'reference', 'b.tar'),
    '--registry',
    host,
    '--plain-http',
    '--repo-prefix',
    prefix,
  ];
  const isUpload = (m: string, p: string) => m === 'PUT' && p.includes('/blobs/uploads/');
  const isManifestPut = (m: string, p: string) => m === 'PUT' && p.includes('/manifests/');

  beforeAll(async () => {
    const proxy = await startFaultProxy(dest.url);
    stoppers.push(proxy);
    const res = await runCli([...importArgs(proxy.host, 'clean'), '-q']);
    expect(res.code).toBe(0);
    clean = {
      tags: await tagDigests(dest.url, 'clean'),
      catalog: await catalogUnder(dest.url, 'clean'),
      uploads: proxy.requests.filter((r) => isUpload(r.method, r.path)).length,
      manifests: proxy.requests.filter((r) => isManifestPut(r.method, r.path)).length,
    };
    expect(Object.keys(clean.tags)).toHaveLength(images.length);
  });

  it(`SIGKILL at random points (seed ${SEED}): never an unpullable tag, and a rerun leaves the registry as a clean import does`, async () => {
    const rnd = prng(SEED + 1);
    const points = [
      { kind: 'at blob upload', n: rnd.int(1, clean.uploads) },
      { kind: 'at manifest push', n: rnd.int(1, clean.manifests) },
      { kind: 'after delay', ms: rnd.int(400, 1500) },
    ] as const;
    for (const [i, point] of points.entries()) {
      const label = `trial ${i} (${point.kind}${'n' in point ? ` #${point.n}` : ` ${point.ms} ms`})`;
      const prefix = `t${i}`;
      let uploads = 0;
      let manifests = 0;
      let child: ChildProcess | undefined;
      const proxy = await startFaultProxy(dest.url, [
        {
          match: (m, p) => {
            if (isUpload(m, p) && ++uploads === (point.kind === 'at blob upload' ? point.n : -1))
              child?.kill('SIGKILL');
            if (isManifestPut(m, p) && ++manifests === (point.kind === 'at manifest push' ? point.n : -1))
              child?.kill('SIGKILL');
            return false;
          },
          fault: { kind: 'status', status: 500 }, // never applied: the matcher only watches
        },
      ]);
      stoppers.push(proxy);
      // For the random delay, uploads are slowed until the kill, so the kill lands inside the run.
      const front =
        point.kind === 'after delay'
          ? await startWireProxy(proxy.url, [
              {
                match: (r) => child !== undefined && !child.killed && isUpload(r.method, r.path),
                action: { kind: 'delay', ms: 150 },
              },
            ])
          : undefined;
      if (front) stoppers.push(front);
      const host = front?.host ?? proxy.host;
      const run = spawnCli([...importArgs(host, prefix), '-q']);
      child = run.child;
      if (point.kind === 'after delay') setTimeout(() => run.child.kill('SIGKILL'), point.ms);
      const end = await run.closed;
      expect(end.signal, `${label}: the import was not interrupted (exit ${end.code})`).toBe('SIGKILL');
      // At the moment of the kill: every tag that exists can be pulled, and holds the right digest.
      expect(
        (await unpullableTags(dest.url)).filter((p) => p.startsWith(`${prefix}/`)),
        label,
      ).toEqual([]);
      const partial = await tagDigests(dest.url, prefix);
      for (const [tag, digest] of Object.entries(partial)) expect(digest, `${label}: ${tag}`).toBe(clean.tags[tag]);

      const rerun = await runCli([...importArgs(host, prefix), '--json']);
      expect(rerun.code, `${label}: rerun failed: ${rerun.stderr}`).toBe(0);
      expect(JSON.parse(rerun.stdout).verification.ok).toBe(true);
      expect(await tagDigests(dest.url, prefix), label).toEqual(clean.tags);
      expect(await catalogUnder(dest.url, prefix), label).toEqual(clean.catalog);
    }
  });
});

describe('full disk during export', () => {
  let disk: string;
  beforeAll(() => {
    if (!canMount) return;
    disk = join(work.path, 'small-disk');
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', disk]);
  });
  afterAll(() => {
    if (canMount && disk) execFileSync('umount', ['-l', disk]);
  });
  const free = () => {
    const st = statfsSync(disk);
    return st.bavail * st.bsize;
  };
  const fill = (name: string, leave: number) =>
    writeFileSync(join(disk, name), Buffer.alloc(Math.max(0, free() - leave)));
  const clear = () => {
    for (const f of readdirSync(disk)) execFileSync('rm', ['-rf', join(disk, f)]);
  };
  /** Another writer takes the space once the up-front check has passed: when the first blob is fetched. */
  const fillOnFirstBlob = async () => {
    let filled = false;
    const proxy = await startFaultProxy(upstream.url, [
      {
        match: (m, p) => {
          if (!filled && m === 'GET' && p.includes('/blobs/')) {
            filled = true;
            fill('other-writer', 16 * 1024);
          }
          return false;
        },
        fault: { kind: 'status', status: 500 }, // never applied: the matcher only watches
      },
    ]);
    stoppers.push(proxy);
    return { proxy, filled: () => filled };
  };

  it.skipIf(!canMount)(
    'a disk too small from the start: refused with the numbers, nothing left on it; a roomy folder then works (skipped only where a tmpfs cannot be mounted)',
    async () => {
      clear();
      fill('filler', 256 * 1024);
      const cacheDir = join(work.path, 'disk-cache-1');
      const res = await runCli([
        'export',
        ...names(),
        '--registry-mirror',
        `*=http://${upstream.host}`,
        '-o',
        join(disk, 'b.tar'),
        '--cache-dir',
        cacheDir,
        '-q',
      ]);
      expect(res.code).toBe(1);
      expect(
        res.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('airgap-bundle:')),
      ).toHaveLength(1);
      expect(res.stderr).toMatch(/space/i);
      expect(res.stderr).toContain(disk);
      expect(res.stderr).toMatch(/\d+(\.\d+)? ?(B|KiB|MiB|GiB|bytes)\b/);
      expect(readdirSync(disk)).toEqual(['filler']);

      const roomy = join(work.path, 'roomy-1');
      mkdirSync(roomy);
      const again = await runCli([
        'export',
        ...names(),
        '--registry-mirror',
        `*=http://${upstream.host}`,
        '-o',
        join(roomy, 'b.tar'),
        '--cache-dir',
        cacheDir,
        '-q',
      ]);
      expect(again.code).toBe(0);
      expect(readFileSync(join(roomy, 'b.tar')).equals(reference)).toBe(true);
    },
  );

  it.skipIf(!canMount)(
    'the disk fills up while the bundle is written: exit 1, no partial bundle, a clear error with numbers, and the cache stays valid (skipped only where a tmpfs cannot be mounted)',
    async () => {
      clear();
      const cacheDir = join(work.path, 'disk-cache-2');
      const { proxy, filled } = await fillOnFirstBlob();
      const res = await runCli([
        'export',
        ...names(),
        '--registry-mirror',
        `*=http://${proxy.host}`,
        '-o',
        join(disk, 'b.tar'),
        '--cache-dir',
        cacheDir,
        '-q',
      ]);
      expect(filled()).toBe(true);
      expect(res.code).toBe(1);
      expect(readdirSync(disk)).toEqual(['other-writer']);
      expect(
        res.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('airgap-bundle:')),
      ).toHaveLength(1);
      expect(res.stderr).not.toMatch(/^\s+at \S+ \(/m);

      // The verified blobs in the cache (another filesystem) are intact: nothing is fetched again.
      const roomy = join(work.path, 'roomy-2');
      mkdirSync(roomy);
      const again = await runCli([
        'export',
        ...names(),
        '--registry-mirror',
        `*=http://${proxy.host}`,
        '-o',
        join(roomy, 'b.tar'),
        '--cache-dir',
        cacheDir,
        '--json',
      ]);
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout).fetched.blobs).toBe(0);
      expect(readFileSync(join(roomy, 'b.tar')).equals(reference)).toBe(true);

      // Last, the message: it says the disk is full, where, and by how much.
      expect(res.stderr).toMatch(/no space|not enough space|disk.*full/i);
      expect(res.stderr).toContain(disk);
      expect(res.stderr, 'the error should give sizes (needed / written / free)').toMatch(
        /\d+(\.\d+)? ?(B|KiB|MiB|GiB|bytes)\b/,
      );
    },
  );

  it.skipIf(!canMount)(
    'without a cache, the disk fills up while blobs are written: exit 1, a clear error with numbers, and the partial bundle is removed (skipped only where a tmpfs cannot be mounted)',
    async () => {
      clear();
      const { proxy, filled } = await fillOnFirstBlob();
      const res = await runCli([...directArgs(proxy.host, disk), '-q'], { env: NO_CACHE });
      expect(filled()).toBe(true);
      expect(res.code).toBe(1);
      expect(readdirSync(disk)).toEqual(['other-writer']);
      expect(
        res.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('airgap-bundle:')),
      ).toHaveLength(1);
      expect(res.stderr).not.toMatch(/^\s+at \S+ \(/m);
      expect(res.stderr).toMatch(/no space/i);
      expect(res.stderr).toContain(disk);
      expect(res.stderr).toMatch(/\d+(\.\d+)? ?(B|KiB|MiB|GiB|bytes)\b/);
    },
  );
});
