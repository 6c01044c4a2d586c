import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningRegistry } from '../../scripts/lib/registry.js';
import type { SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir, unexpectedOutput } from '../helpers/cli.js';
import { exportSampleBundle } from '../helpers/sample-bundle.js';
import { pushSignedImage, type SignedImage } from '../helpers/signed-image.js';
import { editTar, readTar } from '../helpers/tar-edit.js';
import { layerModes, listTree, resolveImage, unpackOci } from '../helpers/talos-cache-reader.js';
import { metadataOf } from '../helpers/metadata.js';

let work: { path: string; remove: () => Promise<void> };
let upstream: RunningRegistry;
let images: SampleImage[];
let bundle: string;
/** A second bundle: a signed image on a registry with a port, and a digest-only reference. */
let signedBundle: string;
let signed: SignedImage;
let signedRef: string;
let digestOnlyRef: string;
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };

function out(name: string): string {
  return join(work.path, 'out', name);
}

async function talosCache(args: string[], env: NodeJS.ProcessEnv = EPOCH) {
  return runCli(['talos-cache', ...args], { env });
}

/** Every image of the sample set resolves in `root`; returns the platforms found per reference. */
function resolveAll(root: string): Record<string, string[]> {
  const found: Record<string, string[]> = {};
  for (const im of images) found[im.upstream] = resolveImage(root, im.upstream).platforms;
  return found;
}

function expectModes(root: string): void {
  const modes = [...listTree(root).values()];
  expect(modes.length).toBeGreaterThan(0);
  expect(new Set(modes)).toEqual(new Set([0o644]));
}

beforeAll(async () => {
  work = await tempDir('talos-cache-');
  mkdirSync(join(work.path, 'out'));
  ({ upstream, images, bundle } = await exportSampleBundle(work.path));
  signed = await pushSignedImage(upstream, 'signed/app', 'v1');
  signedRef = `${upstream.host}/signed/app:v1`;
  const pause = images.find((i) => i.upstream.startsWith('registry.k8s.io/pause:'))!;
  digestOnlyRef = `${upstream.host}/${pause.repository}@${pause.digest}`;
  signedBundle = join(work.path, 'signed.tar');
  const res = await runCli(['export', signedRef, digestOnlyRef, '--plain-http', '-o', signedBundle, '-q']);
  expect(unexpectedOutput(res.stderr)).toEqual([]);
  expect(res.code).toBe(0);
}, 180_000);

afterAll(async () => {
  await upstream?.stop();
  await work?.remove();
});

describe('talos-cache', () => {
  it('oci (default): one linux/amd64 image whose one uncompressed layer holds the tree', async () => {
    const res = await talosCache([bundle, '-o', out('default.oci'), '--json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const result = JSON.parse(res.stdout);
    expect(result.layout).toBe('oci');
    expect(result.platforms).toEqual(['linux/amd64']);
    const oci = unpackOci(out('default.oci'), join(work.path, 'unpacked-default'));
    expect(oci.indexPlatform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(oci.configPlatform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(oci.layerMediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(result.image.layer.digest).toBe(oci.layerDigest);
    const found = resolveAll(oci.tree);
    const isIndex = (im: SampleImage) => im.kind === 'oci-index' || im.kind === 'docker-list';
    for (const im of images) expect(found[im.upstream]).toEqual(isIndex(im) ? ['linux/amd64'] : []);
    expect(new Set(layerModes(out('default.oci'), oci.layerDigest))).toEqual(new Set(['-rw-r--r--']));
    // Docker Hub images under docker.io, as Talos looks them up.
    expect(existsSync(join(oci.tree, 'manifests/docker.io/library/busybox/reference/1.36'))).toBe(true);
    // skopeo, reading the layout on its own, sees one image for the platform asked.
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out('default.oci')}`]).toString());
    expect(inspect.Architecture).toBe('amd64');
    expect(inspect.Os).toBe('linux');
    expect(inspect.Layers).toEqual([oci.layerDigest]);
  });

  it('flat --platform all: every platform of every index, attestations included, files 0644', async () => {
    const res = await talosCache([bundle, '-o', out('all'), '--layout', 'flat', '--platform', 'all', '-q']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const found = resolveAll(out('all'));
    for (const im of images) {
      const runnable = found[im.upstream]!.filter((p) => p !== 'unknown/unknown');
      if (im.kind.endsWith('manifest')) expect(runnable).toEqual([]);
      else expect(runnable.sort()).toEqual([...im.platforms].sort());
    }
    const kubelet = images.find((i) => i.upstream.includes('/kubelet:'))!;
    expect(found[kubelet.upstream]).toContain('unknown/unknown');
    expectModes(out('all'));
  });

  it('several platforms: each index gives the ones asked, nothing else', async () => {
    const res = await talosCache([
      bundle,
      '-o',
      out('two'),
      '--layout',
      'flat',
      '--platform',
      'linux/arm64',
      '--platform',
      'linux/amd64',
      '-q',
    ]);
    expect(res.code).toBe(0);
    const found = resolveAll(out('two'));
    const proxy = images.find((i) => i.upstream.includes('/kube-proxy:'))!;
    expect(found[proxy.upstream]!.sort()).toEqual(['linux/amd64', 'linux/arm64']);
  });

  it('oci declares the first platform asked, and holds all of them', async () => {
    const dir = out('arm.oci');
    const res = await talosCache([bundle, '-o', dir, '--platform', 'linux/arm64', '--platform', 'linux/amd64', '-q']);
    expect(res.code).toBe(0);
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${dir}`]).toString());
    expect([inspect.Os, inspect.Architecture]).toEqual(['linux', 'arm64']);
    const oci = unpackOci(dir, join(work.path, 'unpacked-arm'));
    expect(oci.indexPlatform).toEqual({ os: 'linux', architecture: 'arm64' });
    const kubelet = images.find((i) => i.upstream.includes('/kubelet:'))!;
    expect(resolveImage(oci.tree, kubelet.upstream).platforms.sort()).toEqual(['linux/amd64', 'linux/arm64']);
  });

  it('a registry with a port is host_port_, signature tags are carried, a digest-only reference has no tag file', async () => {
    const res = await talosCache([signedBundle, '-o', out('signed'), '--layout', 'flat', '--json']);
    expect(res.code).toBe(0);
    const root = out('signed');
    const folder = `${upstream.host.replace(':', '_')}_`;
    expect(readdirSync(join(root, 'manifests'))).toEqual([folder]);
    const image = resolveImage(root, signedRef);
    expect(image.digest).toBe(signed.digest);
    const sig = resolveImage(root, `${upstream.host}/signed/app:${signed.signatureTag}`);
    expect(sig.digest).toBe(signed.signatureDigest);
    const referrers = resolveImage(root, `${upstream.host}/signed/app:${signed.referrersTag}`);
    expect(referrers.digest).toBe(signed.referrersDigest);
    expect(referrers.platforms).toEqual(['unknown/unknown']);
    const digestOnly = resolveImage(root, digestOnlyRef);
    expect(digestOnly.platforms).toEqual(['linux/amd64']);
    const pauseRepo = join(root, 'manifests', folder, digestOnlyRef.split('/').slice(1).join('/').split('@')[0]!);
    expect(existsSync(join(pauseRepo, 'reference'))).toBe(false);
    expect(
      JSON.parse(res.stdout)
        .images.find((i: { reference: string }) => i.reference === signedRef)
        .signatures.sort(),
    ).toEqual([signed.referrersTag, signed.signatureTag].sort());
    expectModes(root);
  });

  it('is deterministic: the same bundle and options give a byte-identical layer', async () => {
    const a = await talosCache([bundle, '-o', out('det-a'), '--json', '--platform', 'all']);
    const b = await talosCache([bundle, '-o', out('det-b'), '--json', '--platform', 'all']);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const layer = (dir: string) => JSON.parse(dir).image.layer.digest as string;
    expect(layer(a.stdout)).toBe(layer(b.stdout));
    const files = (d: string) => readdirSync(join(d, 'blobs', 'sha256')).sort();
    expect(files(out('det-a'))).toEqual(files(out('det-b')));
  });

  it('refuses an -o that is not empty, and leaves it alone', async () => {
    mkdirSync(out('busy'));
    writeFileSync(join(out('busy'), 'keep'), 'x');
    const res = await talosCache([bundle, '-o', out('busy')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/exists and is not empty/);
    expect(readdirSync(out('busy'))).toEqual(['keep']);
    // An empty folder is taken, and filled.
    mkdirSync(out('empty'));
    const ok = await talosCache([bundle, '-o', out('empty'), '-q']);
    expect(ok.code).toBe(0);
    expect(readdirSync(out('empty')).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('refuses two unrelated bundles (neither volumes of one set nor a delta and its base)', async () => {
    const res = await talosCache([bundle, signedBundle, '-o', out('mixed')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/signed\.tar is neither a volume of the same set .* nor the base of a delta/);
    expect(existsSync(out('mixed'))).toBe(false);
  });

  it('refuses a platform an image lacks, naming the image', async () => {
    const res = await talosCache([bundle, '-o', out('s390x'), '--platform', 'linux/s390x']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/has no linux\/s390x/);
    const named = /error: (\S+) has no/.exec(res.stderr)?.[1];
    expect(images.filter((i) => i.platforms.length > 1).map((i) => i.upstream)).toContain(named);
    expect(existsSync(out('s390x'))).toBe(false);
  });

  it('refuses a platform a bundle exported with --platform left out', async () => {
    const amd = join(work.path, 'amd64.tar');
    const list = join(work.path, 'cluster.images');
    const exp = await runCli([
      'export',
      '-f',
      list,
      '--registry-mirror',
      `*=${upstream.url}`,
      '--platform',
      'linux/amd64',
      '-o',
      amd,
      '-q',
    ]);
    expect(exp.code).toBe(0);
    const res = await talosCache([amd, '-o', out('arm'), '--platform', 'linux/arm64']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/exported with --platform linux\/amd64 and carries no linux\/arm64/);
    const all = await talosCache([amd, '-o', out('arm'), '--platform', 'all']);
    expect(all.code).toBe(2);
    const ok = await talosCache([amd, '-o', out('amd-only'), '-q']);
    expect(ok.code).toBe(0);
  });

  it('refuses a damaged bundle naming the blob, and writes nothing', async () => {
    const busybox = images.find((i) => i.upstream.startsWith('docker.io/library/busybox'))!;
    const entries = readTar(bundle);
    const manifest = JSON.parse(
      entries.find((e) => e.path === `blobs/sha256/${busybox.digest.slice(7)}`)!.data.toString(),
    );
    const layer = manifest.layers[0].digest as string;
    const damaged = join(work.path, 'damaged.tar');
    editTar(bundle, damaged, (es) =>
      es.map((e) => {
        if (e.path !== `blobs/sha256/${layer.slice(7)}`) return e;
        const data = Buffer.from(e.data);
        data[data.length >> 1]! ^= 0xff;
        return { ...e, data };
      }),
    );
    for (const layout of ['oci', 'flat']) {
      const res = await talosCache([damaged, '-o', out(`damaged-${layout}`), '--layout', layout]);
      expect(res.code).toBe(3);
      expect(res.stderr).toContain(layer);
      expect(existsSync(out(`damaged-${layout}`))).toBe(false);
    }
    expect(readdirSync(join(work.path, 'out')).filter((n) => n.includes('partial'))).toEqual([]);
  });

  it('takes a volume set, and a delta with its base, giving the same cache as the whole bundle', async () => {
    const whole = await talosCache([bundle, '-o', out('whole'), '--json']);
    const list = join(work.path, 'cluster.images');
    const mirror = ['--registry-mirror', `*=${upstream.url}`];
    const vol = await runCli([
      'export',
      '-f',
      list,
      ...mirror,
      '-o',
      join(work.path, 'set.tar'),
      '--volume-size',
      '400K',
      '--json',
      '-q',
    ]);
    expect(vol.code).toBe(0);
    const volumes = (JSON.parse(vol.stdout).volumes as Array<{ path: string }>).map((v) => v.path);
    expect(volumes.length).toBeGreaterThan(1);
    // Volumes this small cut the larger layers into parts: those are put back together, and hashed whole.
    const meta = metadataOf(volumes[0]!);
    expect(meta.blobs.some((b: { parts?: unknown[] }) => (b.parts?.length ?? 0) > 1)).toBe(true);
    const fromSet = await talosCache([...volumes.reverse(), '-o', out('from-set'), '--json']);
    expect(fromSet.stderr).toBe('');
    expect(fromSet.code).toBe(0);
    const some = await talosCache([volumes[0]!, '-o', out('one-volume')]);
    expect(some.stderr).toMatch(/in volume \d+ of \d+, not given/);
    expect(some.code).toBe(2);

    const delta = join(work.path, 'delta.tar');
    const d = await runCli(['export', '-f', list, ...mirror, '--exclude-bundle', bundle, '-o', delta, '-q']);
    expect(d.code).toBe(0);
    const alone = await talosCache([delta, '-o', out('delta-alone')]);
    expect(alone.stderr).toMatch(/left out of this delta bundle/);
    expect(alone.code).toBe(2);
    const withBase = await talosCache([bundle, delta, '-o', out('delta-base'), '--json']);
    expect(withBase.stderr).toBe('');
    expect(withBase.code).toBe(0);

    const layer = (r: { stdout: string }) => JSON.parse(r.stdout).image.layer.digest as string;
    expect(layer(fromSet)).toBe(layer(whole));
    expect(layer(withBase)).toBe(layer(whole));
  });
});
