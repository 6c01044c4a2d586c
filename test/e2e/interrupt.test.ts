// Issue 8: interruptions lose nothing. A SIGKILL at any point of an export or an import, Ctrl-C, or
// a full disk must leave a state from which rerunning the same command gives exactly what an
// uninterrupted run gives, and never a partial bundle under (or beside) the final name.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, statfsSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import type { BundleMetadata } from '../../src/bundle/format.js';
import { CLI, runCli, tempDir } from '../helpers/cli.js';
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
const exportArgs = (host: string, dir: string) => ['export', ...names(), '--registry-mirror', `*=http://${host}`, '-o', join(dir, 'b.tar'), '--cache-dir', join(dir, 'cache')];
const listing = (dir: string) => readdirSync(dir).filter((f) => f !== 'cache').sort();

/** Children this file started, killed (by pid) at the end if a failed test left one running. */
const children: ChildProcess[] = [];

function spawnCli(args: string[]): { child: ChildProcess; closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DOCKER_CONFIG: '/nonexistent-docker-config' } });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
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
  images = (await generateSampleImages(join(work.path, 'samples'), { layerBytes: 32 * 1024 })).filter((i) => SUBSET.includes(i.repository));
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
async function expectRerunIdentical(host: string, dir: string, label: string): Promise<{ fetched: number; cached: number }> {
  const res = await runCli([...exportArgs(host, dir), '--json']);
  expect(res.code, `${label}: rerun failed: ${res.stderr}`).toBe(0);
  expect(readFileSync(join(dir, 'b.tar')).equals(reference), `${label}: rerun bundle differs from the uninterrupted one`).toBe(true);
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
            if (point.kind === 'after blob request' && isBlobGet(r) && proxy.seen.filter(isBlobGet).length === point.n) child?.kill('SIGKILL');
            return false;
          },
          action: { kind: 'hang' },
        },
        // For the random delay, downloads are slowed until the kill, so the kill lands inside the run.
        { match: (r) => point.kind === 'after delay' && child !== undefined && !child.killed && isBlobGet(r), action: { kind: 'delay', ms: 120 } },
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
      expect(listing(dir).filter((n) => n.includes('.partial')), label).toEqual([]);
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
    expect(leftover.some((f) => f.includes('.partial')), `the kill should land mid-write; found ${leftover.join(', ')}`).toBe(true);
    await expectRerunIdentical(upstream.host, dir, 'after a kill mid-write');
    expect(listing(dir)).toEqual(['b.tar', 'b.tar.sha256']);
  });

  it('Ctrl-C while downloading: exit 130 at once, no bundle or temporary file, says how to resume, and resuming works', async () => {
    const dir = join(work.path, 'sigint-download');
    mkdirSync(dir);
    const proxy: FaultProxy = await startFaultProxy(upstream.url, [{ match: (m, p) => m === 'GET' && p.includes('/blobs/'), fault: { kind: 'stall' }, times: 1 }]);
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

describe('import interrupted', () => {
  let clean: { tags: Record<string, string>; catalog: string[]; uploads: number; manifests: number };
  const importArgs = (host: string, prefix: string) => ['import', join(work.path, 'reference', 'b.tar'), '--registry', host, '--plain-http', '--repo-prefix', prefix];
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
            if (isUpload(m, p) && ++uploads === (point.kind === 'at blob upload' ? point.n : -1)) child?.kill('SIGKILL');
            if (isManifestPut(m, p) && ++manifests === (point.kind === 'at manifest push' ? point.n : -1)) child?.kill('SIGKILL');
            return false;
          },
          fault: { kind: 'status', status: 500 }, // never applied: the matcher only watches
        },
      ]);
      stoppers.push(proxy);
      // For the random delay, uploads are slowed until the kill, so the kill lands inside the run.
      const front = point.kind === 'after delay' ? await startWireProxy(proxy.url, [{ match: (r) => child !== undefined && !child.killed && isUpload(r.method, r.path), action: { kind: 'delay', ms: 150 } }]) : undefined;
      if (front) stoppers.push(front);
      const host = front?.host ?? proxy.host;
      const run = spawnCli([...importArgs(host, prefix), '-q']);
      child = run.child;
      if (point.kind === 'after delay') setTimeout(() => run.child.kill('SIGKILL'), point.ms);
      const end = await run.closed;
      expect(end.signal, `${label}: the import was not interrupted (exit ${end.code})`).toBe('SIGKILL');
      // At the moment of the kill: every tag that exists can be pulled, and holds the right digest.
      expect((await unpullableTags(dest.url)).filter((p) => p.startsWith(`${prefix}/`)), label).toEqual([]);
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
  const fill = (name: string, leave: number) => writeFileSync(join(disk, name), Buffer.alloc(Math.max(0, free() - leave)));
  const clear = () => {
    for (const f of readdirSync(disk)) execFileSync('rm', ['-rf', join(disk, f)]);
  };

  it.skipIf(!canMount)('a disk too small from the start: refused with the numbers, nothing left on it; a roomy folder then works (skipped only where a tmpfs cannot be mounted)', async () => {
    clear();
    fill('filler', 256 * 1024);
    const cacheDir = join(work.path, 'disk-cache-1');
    const res = await runCli(['export', ...names(), '--registry-mirror', `*=http://${upstream.host}`, '-o', join(disk, 'b.tar'), '--cache-dir', cacheDir, '-q']);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n').filter((l) => l.startsWith('airgap-bundle:'))).toHaveLength(1);
    expect(res.stderr).toMatch(/space/i);
    expect(res.stderr).toContain(disk);
    expect(res.stderr).toMatch(/\d+(\.\d+)? ?(B|KiB|MiB|GiB|bytes)\b/);
    expect(readdirSync(disk)).toEqual(['filler']);

    const roomy = join(work.path, 'roomy-1');
    mkdirSync(roomy);
    const again = await runCli(['export', ...names(), '--registry-mirror', `*=http://${upstream.host}`, '-o', join(roomy, 'b.tar'), '--cache-dir', cacheDir, '-q']);
    expect(again.code).toBe(0);
    expect(readFileSync(join(roomy, 'b.tar')).equals(reference)).toBe(true);
  });

  it.skipIf(!canMount)('the disk fills up while the bundle is written: exit 1, no partial bundle, a clear error with numbers, and the cache stays valid (skipped only where a tmpfs cannot be mounted)', async () => {
    clear();
    const cacheDir = join(work.path, 'disk-cache-2');
    // Another writer takes the space once the up-front check has passed: when the first blob is fetched.
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
        fault: { kind: 'status', status: 500 },
      },
    ]);
    stoppers.push(proxy);
    const res = await runCli(['export', ...names(), '--registry-mirror', `*=http://${proxy.host}`, '-o', join(disk, 'b.tar'), '--cache-dir', cacheDir, '-q']);
    expect(filled).toBe(true);
    expect(res.code).toBe(1);
    expect(readdirSync(disk)).toEqual(['other-writer']);
    expect(res.stderr.trim().split('\n').filter((l) => l.startsWith('airgap-bundle:'))).toHaveLength(1);
    expect(res.stderr).not.toMatch(/^\s+at \S+ \(/m);

    // The verified blobs in the cache (another filesystem) are intact: nothing is fetched again.
    const roomy = join(work.path, 'roomy-2');
    mkdirSync(roomy);
    const again = await runCli(['export', ...names(), '--registry-mirror', `*=http://${proxy.host}`, '-o', join(roomy, 'b.tar'), '--cache-dir', cacheDir, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).fetched.blobs).toBe(0);
    expect(readFileSync(join(roomy, 'b.tar')).equals(reference)).toBe(true);

    // Last, the message: it says the disk is full, where, and by how much.
    expect(res.stderr).toMatch(/no space|not enough space|disk.*full/i);
    expect(res.stderr).toContain(disk);
    expect(res.stderr, 'the error should give sizes (needed / written / free)').toMatch(/\d+(\.\d+)? ?(B|KiB|MiB|GiB|bytes)\b/);
  });
});
