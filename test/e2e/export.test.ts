import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, talosLikeList, type SampleImage } from '../../scripts/lib/samples.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { runCli, tempDir, unexpectedOutput } from '../helpers/cli.js';
import { MediaType } from '../../src/oci/media-types.js';
import { sha256Digest } from '../../scripts/lib/digest.js';
import { metadataOf } from '../helpers/metadata.js';

const sha256 = sha256Digest;

/** The bundle's metadata, read with tar(1): an independent reader. */

let upstream: RunningRegistry;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };

beforeAll(async () => {
  work = await tempDir();
  upstream = await startRegistry();
  images = await generateSampleImages(join(work.path, 'samples'));
  await seedRegistry(upstream, images);
});

afterAll(async () => {
  await upstream?.stop();
  await work?.remove();
});

const refOf = (img: SampleImage, host = upstream.host) => `${host}/${img.repository}:${img.tag}`;

interface ManifestBlobs {
  config: { digest: string; size: number };
  layers: Array<{ digest: string; size: number }>;
}

/** The config and layers of a single-platform image, as the upstream serves its manifest. */
async function manifestOf(img: SampleImage): Promise<ManifestBlobs> {
  const res = await fetch(`${upstream.url}/v2/${img.repository}/manifests/${img.tag}`, {
    headers: { accept: img.mediaType },
  });
  return (await res.json()) as ManifestBlobs;
}

describe('export against a real registry', () => {
  let bundle: string;
  let listFile: string;

  beforeAll(async () => {
    listFile = join(work.path, 'talos.images');
    writeFileSync(listFile, `# talosctl images\n${talosLikeList(images, upstream.host)}\n`);
    bundle = join(work.path, 'talos.tar');
    const res = await runCli([
      'export',
      '-f',
      listFile,
      '-o',
      bundle,
      '--plain-http',
      '--cache-dir',
      join(work.path, 'cache'),
      '--json',
    ]);
    expect(unexpectedOutput(res.stderr)).toEqual([]);
    expect(res.code).toBe(0);
  });

  it('records every image with the digest the upstream registry serves', () => {
    const meta = metadataOf(bundle);
    expect(meta.images).toHaveLength(images.length);
    for (const img of images) {
      const rec = meta.images.find((i) => i.reference === refOf(img));
      expect(rec, refOf(img)).toBeDefined();
      expect(rec!.digest).toBe(img.digest);
      expect(rec!.mediaType).toBe(img.mediaType);
      const upstreamBytes = execFileSync('skopeo', [
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${refOf(img)}`,
      ]);
      expect(sha256(upstreamBytes)).toBe(rec!.digest);
    }
  });

  it('stores every blob byte for byte under its digest, each once', () => {
    const meta = metadataOf(bundle);
    const listing = execFileSync('tar', ['-tf', bundle]).toString().trim().split('\n');
    expect(listing.slice(0, 3)).toEqual(['airgap-bundle.json', 'oci-layout', 'index.json']);
    const blobs = listing.filter((n) => n.startsWith('blobs/sha256/') && n.length > 'blobs/sha256/'.length);
    expect(new Set(blobs).size).toBe(blobs.length);
    expect(blobs).toHaveLength(meta.blobs.length);
    const shared = meta.images.flatMap((i) => i.blobs).length - meta.blobs.length;
    expect(shared).toBeGreaterThan(0);
    for (const b of meta.blobs.filter((x) => x.role !== 'layer').slice(0, 20)) {
      const bytes = execFileSync('tar', ['-xOf', bundle, `blobs/sha256/${b.digest.slice(7)}`]);
      expect(sha256(bytes)).toBe(b.digest);
      expect(bytes.length).toBe(b.size);
    }
    // Manifests follow layers, indexes follow manifests: a streaming importer meets blobs first.
    const roles = meta.blobs.map((b) => b.role);
    expect(roles.lastIndexOf('layer')).toBeLessThan(roles.indexOf('manifest'));
    expect(roles.lastIndexOf('manifest')).toBeLessThan(roles.indexOf('index'));
  });

  it('keeps Docker manifest lists and OCI indexes untouched', () => {
    const meta = metadataOf(bundle);
    const types = new Set(meta.images.map((i) => i.mediaType));
    expect(types.has(MediaType.dockerManifestList)).toBe(true);
    expect(types.has(MediaType.ociIndex)).toBe(true);
  });

  it('writes a sidecar that sha256sum -c accepts', () => {
    const out = execFileSync('sha256sum', ['-c', `${bundle}.sha256`], { cwd: work.path }).toString();
    expect(out).toContain('talos.tar: OK');
  });

  it('is readable by skopeo as an oci-archive, for OCI-typed images', () => {
    const oci = images.filter((i) => i.mediaType === MediaType.ociIndex || i.mediaType === MediaType.ociManifest);
    expect(oci.length).toBeGreaterThan(0);
    for (const img of oci.slice(0, 3)) {
      const raw = execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${bundle}:${refOf(img)}`]);
      expect(sha256(raw)).toBe(img.digest);
    }
  });

  it('is byte-identical when exported again from scratch', async () => {
    const again = join(work.path, 'again.tar');
    const res = await runCli([
      'export',
      '-f',
      listFile,
      '-o',
      again,
      '--plain-http',
      '--cache-dir',
      join(work.path, 'cache-again'),
      '-q',
    ]);
    expect(res.code).toBe(0);
    expect(readFileSync(again).equals(readFileSync(bundle))).toBe(true);
  });

  it('reuses verified blobs of an earlier run and fetches only what is missing', async () => {
    const cache = join(work.path, 'cache');
    const res = await runCli([
      'export',
      '-f',
      listFile,
      '-o',
      join(work.path, 'rerun.tar'),
      '--plain-http',
      '--cache-dir',
      cache,
      '--json',
    ]);
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout);
    expect(summary.fetched.blobs).toBe(0);
    expect(summary.cached.blobs).toBeGreaterThan(0);
    expect(summary.integrity).toMatch(/^sha256-/);
  });
});

describe('export options', () => {
  const multi = () => images.find((i) => i.kind === 'oci-index' && i.platforms.includes('linux/arm64'))!;

  it('--platform keeps the original index and records the absent children', async () => {
    const out = join(work.path, 'amd64.tar');
    const res = await runCli([
      'export',
      refOf(multi()),
      '--platform',
      'linux/amd64',
      '-o',
      out,
      '--plain-http',
      '--cache-dir',
      join(work.path, 'c-plat'),
      '-q',
    ]);
    expect(res.code).toBe(0);
    const rec = metadataOf(out).images[0]!;
    expect(rec.digest).toBe(multi().digest);
    expect(rec.absent.length).toBeGreaterThan(0);
    expect(rec.platforms.filter((p) => p.carried).map((p) => p.platform)).toContain('linux/amd64');
    expect(rec.platforms.filter((p) => p.carried).map((p) => p.platform)).not.toContain('linux/arm64');
    const verify = await runCli(['verify', out]);
    expect(verify.code).toBe(0);
  });

  it('fetches through a mirror and records the original references', async () => {
    const img = multi();
    const out = join(work.path, 'mirror.tar');
    const res = await runCli([
      'export',
      img.upstream,
      '--registry-mirror',
      `*=http://${upstream.host}`,
      '-o',
      out,
      '--cache-dir',
      join(work.path, 'c-mirror'),
      '-q',
    ]);
    expect(unexpectedOutput(res.stderr)).toEqual([]);
    expect(res.code).toBe(0);
    const rec = metadataOf(out).images[0]!;
    expect(rec.reference).toBe(img.upstream);
    expect(rec.digest).toBe(img.digest);
  });

  it('honours a pinned digest and refuses a wrong one', async () => {
    const img = multi();
    const ok = await runCli([
      'export',
      `${refOf(img)}@${img.digest}`,
      '-o',
      join(work.path, 'pinned.tar'),
      '--plain-http',
      '--cache-dir',
      join(work.path, 'c-pin'),
      '-q',
    ]);
    expect(ok.code).toBe(0);
    const wrong = `sha256:${'0'.repeat(64)}`;
    const out = join(work.path, 'wrongpin.tar');
    const bad = await runCli([
      'export',
      `${refOf(img)}@${wrong}`,
      '-o',
      out,
      '--plain-http',
      '--retries',
      '0',
      '--cache-dir',
      join(work.path, 'c-pin'),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not found|digest/);
    expect(existsSync(out)).toBe(false);
  });

  it('reports every invalid reference with its line before downloading anything', async () => {
    const list = join(work.path, 'bad.images');
    writeFileSync(list, `${refOf(images[0]!)}\nUPPER/case:1\n\n# fine\nbusybox:\n`);
    const out = join(work.path, 'bad.tar');
    const res = await runCli([
      'export',
      '-f',
      list,
      '-o',
      out,
      '--plain-http',
      '--cache-dir',
      join(work.path, 'c-bad'),
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('2 problems in the image sources');
    expect(res.stderr).toContain(`${list}:2`);
    expect(res.stderr).toContain(`${list}:5`);
    expect(existsSync(out)).toBe(false);
    expect(
      existsSync(join(work.path, 'c-bad', 'blobs', 'sha256'))
        ? readdirSync(join(work.path, 'c-bad', 'blobs', 'sha256'))
        : [],
    ).toEqual([]);
  });

  it('reads the list from stdin and a spec file, rejecting unknown spec keys', async () => {
    const spec = join(work.path, 'spec.yaml');
    writeFileSync(spec, `output: from-spec.tar\nimages: [${refOf(images[0]!)}]\nimage: oops\n`);
    const bad = await runCli(['export', '--spec', spec, '--plain-http']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${spec}: unknown key "image"`);
    writeFileSync(spec, `output: from-spec.tar\nimages: [${refOf(images[0]!)}]\n`);
    const res = await runCli(
      ['export', '--spec', spec, '-f', '-', '--plain-http', '--cache-dir', join(work.path, 'c-spec'), '-q'],
      { input: `${refOf(images[1]!)}\n` },
    );
    expect(res.code).toBe(0);
    expect(metadataOf(join(work.path, 'from-spec.tar')).images).toHaveLength(2);
  });

  it('fails in one line when the registry is unreachable, leaving no bundle', async () => {
    const out = join(work.path, 'unreachable.tar');
    const res = await runCli([
      'export',
      '127.0.0.1:1/x/y:1',
      '-o',
      out,
      '--plain-http',
      '--retries',
      '0',
      '-q',
      '--cache-dir',
      join(work.path, 'c-unr'),
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/127\.0\.0\.1:1.*ECONNREFUSED/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('faults between the tool and the registry', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(upstream.url);
  });
  afterAll(async () => proxy?.stop());

  it('refuses a blob whose bytes do not match its digest and writes no bundle', async () => {
    const img = images.find((i) => i.kind === 'oci-manifest' || i.kind === 'docker-manifest')!;
    proxy.rules.length = 0;
    proxy.rules.push({ match: (m, p) => m === 'GET' && p.includes('/blobs/sha256:'), fault: { kind: 'corrupt' } });
    const out = join(work.path, 'corrupt.tar');
    const res = await runCli([
      'export',
      refOf(img, proxy.host),
      '-o',
      out,
      '--plain-http',
      '--retries',
      '1',
      '--cache-dir',
      join(work.path, 'c-corrupt'),
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/sha256:[a-f0-9]{64}.*(digest|content does not match)/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work.path).filter((f) => f.includes('corrupt.tar'))).toEqual([]);
  });

  // A blob of a few KiB is checked on the main thread, a larger one on the hashing thread: both paths.
  it.each([
    ['its config (small)', (m: ManifestBlobs) => m.config],
    ['its largest layer', (m: ManifestBlobs) => [...m.layers].sort((a, b) => b.size - a.size)[0]!],
  ])(
    'without a cache, %s damaged once in transit is caught by the checksum pass, fetched again, and the bundle is right',
    async (_, pick) => {
      const img = images.find((i) => i.kind === 'oci-manifest' || i.kind === 'docker-manifest')!;
      const target = pick(await manifestOf(img));
      proxy.rules.length = 0;
      proxy.rules.push({
        match: (m, p) => m === 'GET' && p.endsWith(`/blobs/${target.digest}`),
        fault: { kind: 'corrupt' },
        times: 1,
      });
      const before = proxy.requests.length;
      const out = join(work.path, `damaged-once-${target.size}.tar`);
      const res = await runCli(['export', refOf(img, proxy.host), '-o', out, '--plain-http', '--json'], {
        env: { AIRGAP_BUNDLE_CACHE: '' },
      });
      expect(res.code, res.stderr).toBe(0);
      const requests = proxy.requests.slice(before);
      const damaged = requests.find((r) => r.faulted)!;
      expect(damaged.path).toContain(target.digest);
      expect(requests.filter((r) => r.method === 'GET' && r.path === damaged.path)).toHaveLength(2);
      expect(metadataOf(out).images[0]!.digest).toBe(img.digest);
      expect((await runCli(['verify', out])).code).toBe(0);
    },
  );

  it('without a cache, a blob damaged every time: exit 1 naming it, no bundle under the final name', async () => {
    const img = images.find((i) => i.kind === 'oci-manifest' || i.kind === 'docker-manifest')!;
    proxy.rules.length = 0;
    proxy.rules.push({ match: (m, p) => m === 'GET' && p.includes('/blobs/sha256:'), fault: { kind: 'corrupt' } });
    const out = join(work.path, 'damaged-always.tar');
    const res = await runCli(['export', refOf(img, proxy.host), '-o', out, '--plain-http', '--retries', '1'], {
      env: { AIRGAP_BUNDLE_CACHE: '' },
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/blob sha256:[a-f0-9]{64}: content does not match after 2 downloads: digest mismatch/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.sha256`)).toBe(false);
  });

  it('retries 429 (honouring Retry-After) and 503, then succeeds with correct digests', async () => {
    const img = images.find((i) => i.kind === 'docker-list')!;
    proxy.rules.length = 0;
    proxy.rules.push({
      match: (m, p) => m === 'GET' && p.includes('/manifests/'),
      fault: { kind: 'status', status: 429, retryAfter: 1 },
      times: 1,
    });
    proxy.rules.push({
      match: (m, p) => m === 'GET' && p.includes('/blobs/'),
      fault: { kind: 'status', status: 503 },
      times: 2,
    });
    const before = proxy.requests.length;
    const out = join(work.path, 'retried.tar');
    const res = await runCli([
      'export',
      refOf(img, proxy.host),
      '-o',
      out,
      '--plain-http',
      '--cache-dir',
      join(work.path, 'c-retry'),
      '-q',
    ]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/429/);
    expect(res.stderr).toMatch(/503/);
    expect(proxy.requests.slice(before).filter((r) => r.faulted)).toHaveLength(3);
    expect(metadataOf(out).images[0]!.digest).toBe(img.digest);
    expect((await runCli(['verify', out])).code).toBe(0);
  });

  it('gives up after the retry budget with the ref and last status', async () => {
    const img = images[0]!;
    proxy.rules.length = 0;
    proxy.rules.push({
      match: (m, p) => m === 'GET' && p.includes('/manifests/'),
      fault: { kind: 'status', status: 502 },
    });
    const res = await runCli([
      'export',
      refOf(img, proxy.host),
      '-o',
      join(work.path, 'giveup.tar'),
      '--plain-http',
      '--retries',
      '1',
      '--cache-dir',
      join(work.path, 'c-giveup'),
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(img.repository);
    expect(res.stderr).toContain('502');
  });
});
