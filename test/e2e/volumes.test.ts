import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir, unexpectedOutput } from '../helpers/cli.js';

let upstream: RunningRegistry;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
let volumes: string[];
const VOLUME_SIZE = 2 * 1024 * 1024;

/** repository:tag → digest, as the registry serves them. */
function registryState(reg: RunningRegistry): Record<string, string> {
  const out: Record<string, string> = {};
  const catalog = JSON.parse(execFileSync('curl', ['-s', `${reg.url}/v2/_catalog`]).toString()).repositories as string[];
  for (const repo of catalog) {
    const tags = (JSON.parse(execFileSync('curl', ['-s', `${reg.url}/v2/${repo}/tags/list`]).toString()).tags ?? []) as string[];
    for (const tag of tags) {
      const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${repo}:${tag}`]);
      out[`${repo}:${tag}`] = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
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
        const now = out.images.filter((i: { status: string }) => i.status === 'imported' || i.status === 'already present').length;
        expect(now).toBeGreaterThanOrEqual(complete);
        complete = now;
        for (const w of out.images.filter((i: { status: string }) => i.status === 'waiting')) expect(w.reason).toMatch(/needs volume/);
        expect(out.verification.ok).toBe(true);
      }
      expect(complete).toBe(images.length);
      for (const v of volumes) expect((await runCli(['import', v, '--registry', oneShot.host, '--plain-http', '-q'])).code).toBe(0);
      expect(registryState(stepwise)).toEqual(registryState(oneShot));
      expect(Object.keys(registryState(stepwise))).toHaveLength(images.length);
    } finally {
      await stepwise.stop();
      await oneShot.stop();
    }
  });

  it('refuses a volume size that cannot hold a blob', async () => {
    const res = await runCli(['export', `${upstream.host}/${images[0]!.repository}:${images[0]!.tag}`, '-o', join(work.path, 'tiny.tar'), '--volume-size', '20K', '--plain-http', '--cache-dir', join(work.path, 'cache')]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/--volume-size/);
  });
});
