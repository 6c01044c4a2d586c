// How many requests an import costs a real registry, per image, and in what order they come:
// a Distribution registry behind a recording proxy, a set of small images written straight into
// an upstream registry's storage (the benchmark's generator), exported with the CLI.
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { writeManySet, type ManySet } from '../../scripts/lib/many-images.js';
import { expectServed } from '../../scripts/lib/many-steps.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startWireProxy, type SeenRequest, type WireProxy } from '../helpers/wire-proxy.js';
import { startQuirkProxy } from '../helpers/quirk-proxy.js';

const COUNT = 20; // 6 of them two-platform indexes
let upstream: RunningRegistry;
let set: ManySet;
let work: { path: string; remove: () => Promise<void> };
let full: string;
let firstHalf: string;
const stoppers: Array<{ stop(): Promise<void> }> = [];

async function exportList(name: string, images: ManySet['images']): Promise<string> {
  const list = join(work.path, `${name}.txt`);
  await writeFile(list, images.map((i) => `${upstream.host}/${i.repository}:${i.tag}\n`).join(''));
  const out = join(work.path, `${name}.tar`);
  const res = await runCli(['export', '-f', list, '-o', out, '--plain-http', '-q']);
  expect(res.code, res.stderr).toBe(0);
  return out;
}

/** An empty registry behind a proxy that records every request in arrival order. */
async function recordedRegistry(): Promise<{ reg: RunningRegistry; proxy: WireProxy }> {
  const reg = await startRegistry();
  const proxy = await startWireProxy(reg.url);
  stoppers.push(proxy, reg);
  return { reg, proxy };
}

const importInto = (bundle: string, host: string) =>
  runCli(['import', bundle, '--registry', host, '--plain-http', '-q', '--skip-verify']);

const isManifestPut = (r: SeenRequest) => r.method === 'PUT' && r.path.includes('/manifests/');
const repositoryOf = (r: SeenRequest) => /^\/v2\/(.+?)\/(manifests|blobs)\//.exec(r.path)?.[1];

beforeAll(async () => {
  work = await tempDir();
  upstream = await startRegistry();
  set = await writeManySet(upstream.storageDir, COUNT, () => undefined);
  full = await exportList('full', set.images);
  firstHalf = await exportList('half', set.images.slice(0, COUNT / 2));
});

afterAll(async () => {
  for (const s of stoppers.reverse()) await s.stop();
  await upstream?.stop();
  await work?.remove();
});

describe('registry requests per image', () => {
  it('into an empty registry: at most 8 per image, no blob asked about, each top-level manifest put once, by tag', async () => {
    const { reg, proxy } = await recordedRegistry();
    const res = await importInto(full, proxy.host);
    expect(res.code, res.stderr).toBe(0);
    // Checked straight at the registry, not through the proxy that counts.
    await expectServed(reg.host, set.images, 'import');
    const seen = proxy.seen;
    expect(seen.length).toBeLessThanOrEqual(8 * COUNT);
    // The catalog said every repository is new: nothing in them to ask about.
    expect(seen.filter((r) => r.method === 'HEAD')).toEqual([]);
    // One probe of the single namespace, not one per repository.
    expect(seen.filter((r) => r.method === 'DELETE').length).toBe(1);
    const puts = seen.filter(isManifestPut);
    const children = set.images.filter((i) => i.blobs > 4).length * 2; // two platform manifests per index
    expect(puts.length).toBe(COUNT + children);
    for (const img of set.images) {
      const mine = puts.filter((r) => repositoryOf(r) === img.repository);
      // Children by digest, the top-level manifest once, by tag, and last.
      expect(mine.filter((r) => r.path.endsWith(`/manifests/${img.digest}`))).toEqual([]);
      expect(mine.at(-1)!.path).toBe(`/v2/${img.repository}/manifests/${img.tag}`);
    }
  });

  it('no tag before its content: every blob and child of a repository is in before its tag is put', async () => {
    const { proxy } = await recordedRegistry();
    expect((await importInto(full, proxy.host)).code).toBe(0);
    for (const img of set.images) {
      const mine = proxy.seen.filter((r) => repositoryOf(r) === img.repository && r.method !== 'HEAD');
      const tag = mine.findIndex((r) => r.path === `/v2/${img.repository}/manifests/${img.tag}`);
      expect(tag).toBe(mine.length - 1);
      // Every write before the tag was answered with success before the tag was sent.
      expect(mine.slice(0, tag).every((r) => r.status !== undefined && r.status < 300)).toBe(true);
    }
  });

  it('the no-op re-import: at most 2 per image, nothing written', async () => {
    const { proxy } = await recordedRegistry();
    expect((await importInto(full, proxy.host)).code).toBe(0);
    const before = proxy.seen.length;
    const again = await runCli(['import', full, '--registry', proxy.host, '--plain-http', '--skip-verify', '--json']);
    expect(again.code).toBe(0);
    const statuses = (JSON.parse(again.stdout) as { images: Array<{ status: string }> }).images.map((i) => i.status);
    expect(statuses).toEqual(Array(COUNT).fill('already present'));
    const rerun = proxy.seen.slice(before);
    expect(rerun.length).toBeLessThanOrEqual(2 * COUNT);
    expect(rerun.filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
  });

  it('a blob of an image already in the registry is mounted from there, not uploaded again', async () => {
    const { reg, proxy } = await recordedRegistry();
    expect((await importInto(firstHalf, proxy.host)).code).toBe(0);
    const before = proxy.seen.length;
    expect((await importInto(full, proxy.host)).code).toBe(0);
    await expectServed(reg.host, set.images, 'the second import');
    const rest = proxy.seen.slice(before);
    const uploads = rest.filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'));
    const mounts = rest.filter((r) => r.method === 'POST' && r.path.includes('mount='));
    // The shared base layer is the only blob of the second half that the first half holds.
    expect(mounts.length).toBe(COUNT / 2);
    expect(mounts.every((r) => r.status === 201)).toBe(true);
    // Each new image uploads its own config(s) and unique layer; the base layer goes in by mount only.
    const own = set.images.slice(COUNT / 2).reduce((s, i) => s + (i.blobs > 4 ? 3 : 2), 0);
    expect(uploads.length).toBe(own);
    // The images already there are asked about once each, and not pushed again.
    for (const img of set.images.slice(0, COUNT / 2))
      expect(rest.filter((r) => repositoryOf(r) === img.repository).map((r) => r.method)).toEqual(['HEAD']);
  });

  it('without a catalog every repository is asked about, and the import is the same', async () => {
    const reg = await startRegistry();
    const proxy = await startQuirkProxy(reg.url, { noCatalog: 404 });
    stoppers.push(proxy, reg);
    const res = await importInto(full, proxy.host);
    expect(res.code, res.stderr).toBe(0);
    await expectServed(reg.host, set.images, 'import without a catalog');
    const heads = proxy.requests.filter((r) => r.method === 'HEAD');
    expect(heads.filter((r) => r.path.includes('/manifests/')).length).toBe(COUNT);
    expect(heads.filter((r) => r.path.includes('/blobs/')).length).toBeGreaterThan(0);
  });
});
