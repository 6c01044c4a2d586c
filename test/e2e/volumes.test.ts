import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir, unexpectedOutput } from '../helpers/cli.js';
import { readTar, writeTar } from '../helpers/tar-edit.js';
import { sha256Digest } from '../../scripts/lib/digest.js';
import { metadataOf } from '../helpers/metadata.js';

let upstream: RunningRegistry;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
let volumes: string[];
const VOLUME_SIZE = 2 * 1024 * 1024;

/** repository:tag → digest, as the registry serves them. */
function registryState(reg: RunningRegistry): Record<string, string> {
  const out: Record<string, string> = {};
  const catalog = JSON.parse(execFileSync('curl', ['-s', `${reg.url}/v2/_catalog`]).toString())
    .repositories as string[];
  for (const repo of catalog) {
    const tags = (JSON.parse(execFileSync('curl', ['-s', `${reg.url}/v2/${repo}/tags/list`]).toString()).tags ??
      []) as string[];
    for (const tag of tags) {
      const raw = execFileSync('skopeo', [
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${reg.host}/${repo}:${tag}`,
      ]);
      out[`${repo}:${tag}`] = sha256Digest(raw);
    }
  }
  return out;
}

beforeAll(async () => {
  work = await tempDir();
  upstream = await startRegistry();
  images = await generateSampleImages(join(work.path, 'samples'));
  await seedRegistry(upstream, images);
  const res = await runCli([
    'export',
    ...images.map((i) => `${upstream.host}/${i.repository}:${i.tag}`),
    '-o',
    join(work.path, 'set.tar'),
    '--volume-size',
    String(VOLUME_SIZE),
    '--plain-http',
    '--cache-dir',
    join(work.path, 'cache'),
    '--json',
  ]);
  expect(unexpectedOutput(res.stderr)).toEqual([]);
  expect(res.code).toBe(0);
  volumes = (JSON.parse(res.stdout).volumes as Array<{ path: string }>).map((v) => v.path);
});

afterAll(async () => {
  await upstream?.stop();
  await work?.remove();
});

describe('volumes', () => {
  it('writes at least three self-contained volumes under the size, each with its sidecar', () => {
    expect(volumes.length).toBeGreaterThanOrEqual(3);
    expect(existsSync(join(work.path, 'set.tar'))).toBe(false);
    for (const v of volumes) {
      expect(statSync(v).size).toBeLessThanOrEqual(VOLUME_SIZE);
      expect(execFileSync('sha256sum', ['-c', `${v}.sha256`], { cwd: work.path }).toString()).toContain(': OK');
      expect(execFileSync('tar', ['-tf', v]).toString().split('\n')[0]).toBe('airgap-bundle.json');
    }
    expect(readdirSync(work.path).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it('verify checks one volume, a subset, or the whole set', async () => {
    const one = await runCli(['verify', volumes[1]!, '--json']);
    expect(one.code).toBe(0);
    const r1 = JSON.parse(one.stdout);
    expect(r1.volumes.present).toEqual([2]);
    expect(r1.volumes.missing).toContain(1);
    expect(r1.images.some((i: { status: string }) => i.status === 'needs other volumes')).toBe(true);
    const all = JSON.parse((await runCli(['verify', ...volumes.slice().reverse(), '--json'])).stdout);
    expect(all.ok).toBe(true);
    expect(all.volumes.missing).toEqual([]);
    expect(all.images.every((i: { status: string }) => i.status === 'intact')).toBe(true);
  });

  it('imports volumes one at a time in any order; the registry ends equal to a one-shot import', async () => {
    const stepwise = await startRegistry();
    const oneShot = await startRegistry();
    try {
      // Volume 2, then 3, then 1, then the rest.
      const order = [2, 3, 1, ...Array.from({ length: volumes.length - 3 }, (_, i) => i + 4)];
      let complete = 0;
      for (const n of order) {
        const res = await runCli(['import', volumes[n - 1]!, '--registry', stepwise.host, '--plain-http', '--json']);
        expect(res.code, res.stderr).toBe(0);
        const out = JSON.parse(res.stdout);
        const now = out.images.filter(
          (i: { status: string }) => i.status === 'imported' || i.status === 'already present',
        ).length;
        expect(now).toBeGreaterThanOrEqual(complete);
        complete = now;
        for (const w of out.images.filter((i: { status: string }) => i.status === 'waiting'))
          expect(w.reason).toMatch(/needs volume/);
        // A run that completes no image has nothing of the bundle to check in the registry yet.
        if (now === 0) expect(out.verification).toBeUndefined();
        else expect(out.verification.ok).toBe(true);
      }
      expect(complete).toBe(images.length);
      for (const v of volumes)
        expect((await runCli(['import', v, '--registry', oneShot.host, '--plain-http', '-q'])).code).toBe(0);
      expect(registryState(stepwise)).toEqual(registryState(oneShot));
      expect(Object.keys(registryState(stepwise))).toHaveLength(images.length);
    } finally {
      await stepwise.stop();
      await oneShot.stop();
    }
  });

  it('refuses a volume size that cannot hold the metadata and manifests', async () => {
    const res = await runCli([
      'export',
      `${upstream.host}/${images[0]!.repository}:${images[0]!.tag}`,
      '-o',
      join(work.path, 'tiny.tar'),
      '--volume-size',
      '4K',
      '--plain-http',
      '--cache-dir',
      join(work.path, 'cache'),
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--volume-size .*cannot even hold the metadata and manifests/);
    expect(readdirSync(work.path).filter((f) => f.startsWith('tiny'))).toEqual([]);
  });
});

describe('a blob larger than a volume', () => {
  const SMALL = 200 * 1024;
  let installer: SampleImage;
  let parts: string[];
  let split: string[];
  const partOf = new Map<string, string>();

  beforeAll(async () => {
    installer = images.find((i) => i.repository.endsWith('installer'))!;
    const res = await runCli([
      'export',
      `${upstream.host}/${installer.repository}:${installer.tag}`,
      '-o',
      join(work.path, 'split.tar'),
      '--volume-size',
      String(SMALL),
      '--plain-http',
      '--cache-dir',
      join(work.path, 'cache'),
      '--json',
    ]);
    expect(res.code, res.stderr).toBe(0);
    split = (JSON.parse(res.stdout).volumes as Array<{ path: string }>).map((v) => v.path);
    const metadata = metadataOf(split[0]!);
    parts = metadata.blobs.flatMap((b) => (b.parts ?? []).map((p) => p.digest));
    for (const b of metadata.blobs) for (const p of b.parts ?? []) partOf.set(p.digest, b.digest);
  });

  it('cuts it into parts, each an entry named by its own digest, every volume under the size', () => {
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const v of split) {
      expect(statSync(v).size).toBeLessThanOrEqual(SMALL);
      expect(execFileSync('sha256sum', ['-c', `${v}.sha256`], { cwd: work.path }).toString()).toContain(': OK');
    }
    const names = split.flatMap((v) => execFileSync('tar', ['-tf', v]).toString().split('\n'));
    for (const p of parts) expect(names).toContain(`blobs/sha256/${p.slice(7)}`);
  });

  it('verify checks each part on its own, and names a damaged part', async () => {
    const all = await runCli(['verify', ...split, '--json']);
    expect(all.code, all.stdout).toBe(0);
    expect(JSON.parse(all.stdout).images.every((i: { status: string }) => i.status === 'intact')).toBe(true);
    const one = JSON.parse((await runCli(['verify', split[0]!, '--json'])).stdout);
    expect(one.images[0].status).toBe('needs other volumes');

    // Flip one byte of one part, in a copy of the volume that holds it.
    const victim = split.find((v) => execFileSync('tar', ['-tf', v]).toString().includes(parts[1]!.slice(7)))!;
    const entries = readTar(victim);
    const entry = entries.find((e) => e.path === `blobs/sha256/${parts[1]!.slice(7)}`)!;
    entry.data[100] = entry.data[100]! ^ 0xff;
    const damaged = join(work.path, 'damaged', basename(victim));
    mkdirSync(dirname(damaged), { recursive: true });
    writeTar(damaged, entries);
    const res = await runCli(['verify', ...split.filter((v) => v !== victim), damaged, '--json']);
    expect(res.code).toBe(3);
    const report = JSON.parse(res.stdout);
    expect(report.images[0].status).toBe('damaged');
    expect(report.images[0].problems.join('\n')).toMatch(new RegExp(`part 2 of \\d+ \\(${parts[1]}`));
  });

  it('imports one volume per run in any order: parts wait in the registry, the last run pushes the whole blob', async () => {
    const reg = await startRegistry();
    try {
      const order = split.map((_, i) => i).reverse();
      let staged = 0;
      for (const [step, i] of order.entries()) {
        const res = await runCli(['import', split[i]!, '--registry', reg.host, '--plain-http', '--json']);
        expect(res.code, res.stderr).toBe(0);
        const out = JSON.parse(res.stdout);
        expect(out.images[0].status).toBe(step === order.length - 1 ? 'imported' : 'waiting');
        const carried = parts.filter((p) => execFileSync('tar', ['-tf', split[i]!]).toString().includes(p.slice(7)));
        // Blobs this volume cannot complete yet: the parts it carries of them wait in the
        // registry under their own digests. The other parts it carries completed their blob here.
        const waiting = (out.staged as Array<{ digest: string; parts: number }>)
          .filter((x) => x.parts > 0)
          .map((x) => x.digest);
        for (const d of waiting) expect(carried.some((p) => partOf.get(p) === d)).toBe(true);
        const ahead = carried.filter((p) => waiting.includes(partOf.get(p)!));
        expect(out.staged.reduce((n: number, x: { parts: number }) => n + x.parts, 0)).toBe(ahead.length);
        for (const p of ahead)
          expect(
            execFileSync('curl', [
              '-s',
              '-o',
              '/dev/null',
              '-w',
              '%{http_code}',
              '-I',
              `${reg.url}/v2/${installer.repository}/blobs/${p}`,
            ]).toString(),
          ).toBe('200');
        staged += ahead.length;
      }
      expect(staged).toBeGreaterThan(0);
      const state = registryState(reg);
      expect(state).toEqual({ [`${installer.repository}:${installer.tag}`]: installer.digest });
      // skopeo pulls every layer, checking each against its digest.
      execFileSync('skopeo', [
        'copy',
        '--all',
        '--src-tls-verify=false',
        `docker://${reg.host}/${installer.repository}:${installer.tag}`,
        `dir:${join(work.path, 'pulled')}`,
      ]);
      const again = await runCli(['import', split[0]!, '--registry', reg.host, '--plain-http', '--json']);
      expect(JSON.parse(again.stdout).images[0].status).toBe('already present');
    } finally {
      await reg.stop();
    }
  });

  it('a staged part the registry lost (garbage-collected) is asked for again', async () => {
    const reg = await startRegistry();
    try {
      // A volume carrying a part goes first; the registry then loses that part before the others arrive.
      const holds = (v: string, p: string) => execFileSync('tar', ['-tf', v]).toString().includes(p.slice(7));
      const first = split.findIndex((v) => parts.some((p) => holds(v, p)));
      const out1 = JSON.parse(
        (await runCli(['import', split[first]!, '--registry', reg.host, '--plain-http', '--json'])).stdout,
      );
      const lost = parts.find((p) => holds(split[first]!, p))!;
      expect(out1.staged.some((s: { digest: string }) => s.digest === partOf.get(lost))).toBe(true);
      expect(
        execFileSync('curl', [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-X',
          'DELETE',
          `${reg.url}/v2/${installer.repository}/blobs/${lost}`,
        ]).toString(),
      ).toBe('202');
      let out;
      for (const [i, v] of split.entries())
        if (i !== first)
          out = JSON.parse((await runCli(['import', v, '--registry', reg.host, '--plain-http', '--json'])).stdout);
      expect(out.images[0].status).toBe('waiting');
      expect(out.images[0].reason).toBe(`needs volume ${first + 1}`);
      const again = await runCli(['import', split[first]!, '--registry', reg.host, '--plain-http', '--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).images[0].status).toBe('imported');
      expect(registryState(reg)).toEqual({ [`${installer.repository}:${installer.tag}`]: installer.digest });
    } finally {
      await reg.stop();
    }
  });
});
