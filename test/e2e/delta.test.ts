import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { metadataOf } from '../helpers/metadata.js';

let upstream: RunningRegistry;
let isolated: RunningRegistry;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
const refs = (list: SampleImage[]) => list.map((i) => `${upstream.host}/${i.repository}:${i.tag}`);

beforeAll(async () => {
  work = await tempDir();
  upstream = await startRegistry();
  isolated = await startRegistry();
  images = await generateSampleImages(join(work.path, 'samples'));
  await seedRegistry(upstream, images);
});

afterAll(async () => {
  await upstream?.stop();
  await isolated?.stop();
  await work?.remove();
});

describe('incremental bundles', () => {
  it('full import, inventory, delta export of a changed list, delta import: the registry is complete', async () => {
    // "Before the upgrade": the kube-* family without the scheduler and proxy.
    const before = images.filter((i) => !/kube-(scheduler|proxy)|installer/.test(i.repository));
    const after = images;
    const full = join(work.path, 'full.tar');
    const cache = join(work.path, 'cache');
    expect(
      (await runCli(['export', ...refs(before), '-o', full, '--plain-http', '--cache-dir', cache, '-q'])).code,
    ).toBe(0);
    expect((await runCli(['import', full, '--registry', isolated.host, '--plain-http', '-q'])).code).toBe(0);

    const receipt = join(work.path, 'receipt.json');
    const inv = await runCli(['inventory', '--registry', isolated.host, '--plain-http', '-o', receipt]);
    expect(inv.code).toBe(0);
    const r = JSON.parse(readFileSync(receipt, 'utf8'));
    expect(Object.keys(r.repositories)).toHaveLength(before.length);

    const delta = join(work.path, 'delta.tar');
    const res = await runCli([
      'export',
      ...refs(after),
      '--exclude-receipt',
      receipt,
      '-o',
      delta,
      '--plain-http',
      '--cache-dir',
      cache,
      '--json',
    ]);
    expect(res.code).toBe(0);
    const fullAfter = join(work.path, 'full-after.tar');
    expect(
      (await runCli(['export', ...refs(after), '-o', fullAfter, '--plain-http', '--cache-dir', cache, '-q'])).code,
    ).toBe(0);
    // Shared base layers and unchanged images stay behind: the delta is much smaller.
    expect(statSync(delta).size).toBeLessThan(statSync(fullAfter).size * 0.6);

    const verify = await runCli(['verify', delta]);
    expect(verify.code).toBe(0);
    expect(verify.stderr).toMatch(/delta bundle/);
    const inspect = JSON.parse((await runCli(['inspect', delta, '--json'])).stdout);
    expect(inspect.delta.leftOut).toBeGreaterThan(0);

    // Into an empty registry the delta is refused before anything is pushed.
    const empty = await startRegistry();
    try {
      const refused = await runCli(['import', delta, '--registry', empty.host, '--plain-http']);
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(/depends on \d+ blob/);
      expect(JSON.parse(execFileSync('curl', ['-s', `${empty.url}/v2/_catalog`]).toString()).repositories).toEqual([]);
    } finally {
      await empty.stop();
    }

    const imported = await runCli(['import', delta, '--registry', isolated.host, '--plain-http', '--json']);
    expect(imported.code).toBe(0);
    const check = await runCli(['verify', fullAfter, '--registry', isolated.host, '--plain-http', '--deep']);
    expect(check.code).toBe(0);
  });

  it('--exclude-bundle leaves out what an earlier bundle carried', async () => {
    const cache = join(work.path, 'cache');
    const old = join(work.path, 'old.tar');
    expect(
      (await runCli(['export', ...refs(images.slice(0, 6)), '-o', old, '--plain-http', '--cache-dir', cache, '-q']))
        .code,
    ).toBe(0);
    const delta = join(work.path, 'delta2.tar');
    const res = await runCli([
      'export',
      ...refs(images),
      '--exclude-bundle',
      old,
      '-o',
      delta,
      '--plain-http',
      '--cache-dir',
      cache,
      '--json',
    ]);
    expect(res.code).toBe(0);
    const meta = metadataOf(delta);
    expect(meta.delta?.against).toEqual(['old.tar']);
    const external = meta.blobs.filter((b: { external?: boolean }) => b.external);
    expect(external.length).toBeGreaterThan(0);
    const names = execFileSync('tar', ['-tf', delta]).toString();
    for (const b of external) expect(names).not.toContain(b.digest.slice(7));
  });
});
