// Registries that are not Distribution. Each behaviour is reproduced by a proxy in front
// of a real Distribution registry (test/helpers/quirk-proxy.ts), and the built CLI is driven
// through it as a user would.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { sha256Digest } from '../../scripts/lib/digest.js';
import type { BlobRecord, BundleMetadata, ImageRecord } from '../../src/bundle/format.js';
import { buildMetadata } from '../../src/bundle/metadata.js';
import { BlobCache } from '../../src/export/blob-cache.js';
import { writeBundle } from '../../src/export/cache-writer.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { prng } from '../helpers/prng.js';
import { startQuirkProxy, type QuirkProxy, type Quirks } from '../helpers/quirk-proxy.js';
import { catalog, tagDigests, unpullableTags } from '../helpers/registry-state.js';
import { pushSignedImage } from '../helpers/signed-image.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** The largest layer: big enough that a small body limit forces a chunked upload. */
const BIG_LAYER = 200 * 1024;

let work: { path: string; remove: () => Promise<void> };
let bundle: string;
let meta: BundleMetadata;
const started: Array<{ stop(): Promise<void> }> = [];

/** Two images in two repositories sharing one layer (so a mount is asked for), one large layer. */
async function writeSharedBundle(dir: string, output: string): Promise<BundleMetadata> {
  const rnd = prng(16);
  const cache = new BlobCache(join(dir, 'cache'));
  await cache.init();
  const records = new Map<string, BlobRecord>();
  const put = async (bytes: Buffer, mediaType: string, role: BlobRecord['role']) => {
    const digest = sha256Digest(bytes);
    await cache.putBytes(digest, bytes);
    records.set(digest, { digest, size: bytes.length, mediaType, role });
    return { mediaType, digest, size: bytes.length };
  };
  const random = (n: number) => Buffer.from(Array.from({ length: n }, () => rnd.int(0, 255)));
  const shared = await put(random(3000), OCI_LAYER, 'layer');
  const image = async (name: string, own: number): Promise<ImageRecord> => {
    const layer = await put(random(own), OCI_LAYER, 'layer');
    const config = await put(
      Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', name })),
      OCI_CONFIG,
      'config',
    );
    const top = await put(
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [shared, layer] })),
      OCI_MANIFEST,
      'manifest',
    );
    const blobs = [shared.digest, layer.digest, config.digest, top.digest].sort();
    return {
      reference: `registry.example/quirk/${name}:v1`,
      registry: 'registry.example',
      repository: `quirk/${name}`,
      tag: 'v1',
      digest: top.digest,
      mediaType: OCI_MANIFEST,
      size: top.size,
      platforms: [],
      absent: [],
      blobs,
      bytes: blobs.reduce((s, d) => s + records.get(d)!.size, 0),
    };
  };
  const images = [await image('app', BIG_LAYER), await image('tool', 2000)];
  const order = { config: 0, layer: 0, manifest: 1, index: 2 } as const;
  const blobs = [...records.values()].sort(
    (a, b) => order[a.role] - order[b.role] || b.size - a.size || (a.digest < b.digest ? -1 : 1),
  );
  const metadata = buildMetadata(images, blobs, {
    tool: { name: 'airgap-bundle', version: 'quirks' },
    platforms: null,
  });
  await writeBundle(cache, metadata, { output });
  return metadata;
}

async function registry(opts?: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
  const r = await startRegistry(opts);
  started.push(r);
  return r;
}

async function proxied(
  quirks: Quirks,
  opts?: Parameters<typeof startRegistry>[0],
  upstreamAuthorization?: string,
): Promise<{ reg: RunningRegistry; proxy: QuirkProxy }> {
  const reg = await registry(opts);
  const proxy = await startQuirkProxy(reg.url, quirks, upstreamAuthorization);
  started.push(proxy);
  return { reg, proxy };
}

/** Every image of the bundle tagged in the registry with the bundle's digest, and pullable. */
async function expectComplete(reg: RunningRegistry): Promise<void> {
  const held = await tagDigests(reg.url);
  for (const im of meta.images) expect(held[`${im.repository}:${im.tag}`], im.reference).toBe(im.digest);
  expect(await unpullableTags(reg.url)).toEqual([]);
}

const importArgs = (proxy: QuirkProxy, ...more: string[]) => [
  'import',
  bundle,
  '--registry',
  proxy.host,
  '--plain-http',
  ...more,
];
const verifyArgs = (proxy: QuirkProxy, ...more: string[]) => [
  'verify',
  bundle,
  '--registry',
  proxy.host,
  '--plain-http',
  ...more,
];

beforeAll(async () => {
  work = await tempDir();
  await mkdir(join(work.path, 'b'));
  bundle = join(work.path, 'shared.tar');
  meta = await writeSharedBundle(join(work.path, 'b'), bundle);
});

afterAll(async () => {
  for (const s of started.reverse()) await s.stop();
  await work?.remove();
});

describe('registries that are not Distribution', () => {
  it.each([404, 401, 405] as const)(
    '1. no catalog (%i): import and verify check every reference directly; inventory needs --bundle',
    async (status) => {
      const { reg, proxy } = await proxied({ noCatalog: status });
      const imp = await runCli(importArgs(proxy));
      expect(imp.stderr).toContain('checked each reference directly');
      expect(imp.code).toBe(0);
      await expectComplete(reg);
      const ver = await runCli(verifyArgs(proxy, '--json'));
      expect(ver.code).toBe(0);
      const check = JSON.parse(ver.stdout);
      expect(check.catalog).toBe('unavailable');
      expect(check.rows.length).toBe(meta.images.length * 2);
      expect(check.rows.every((r: { status: string }) => r.status === 'ok')).toBe(true);
      const verText = await runCli(verifyArgs(proxy));
      expect(verText.stderr).toContain('checked each reference directly');

      const receipt = join(work.path, `receipt-${status}.json`);
      const without = await runCli(['inventory', '--registry', proxy.host, '--plain-http', '-o', receipt]);
      expect(without.code).toBe(1);
      expect(without.stderr).toMatch(/catalog.*--bundle/);
      const withBundle = await runCli([
        'inventory',
        '--registry',
        proxy.host,
        '--plain-http',
        '-o',
        receipt,
        '--bundle',
        bundle,
      ]);
      expect(withBundle.stderr).toContain('from the bundle');
      expect(withBundle.code).toBe(0);
      const r = JSON.parse(await readFile(receipt, 'utf8'));
      for (const im of meta.images) expect(r.repositories[im.repository][im.tag!]).toBe(im.digest);
    },
  );

  it('2. a catalog with a smaller page limit is listed in smaller pages', async () => {
    const { reg, proxy } = await proxied({ catalogMaxEntries: 1 });
    const imp = await runCli(importArgs(proxy, '--json'));
    expect(imp.code).toBe(0);
    expect(JSON.parse(imp.stdout).verification.catalog).toBe('listed');
    const ver = await runCli(verifyArgs(proxy, '--json'));
    expect(ver.code).toBe(0);
    expect(JSON.parse(ver.stdout).catalog).toBe('listed');
    const receipt = join(work.path, 'receipt-paged.json');
    const inv = await runCli(['inventory', '--registry', proxy.host, '--plain-http', '-o', receipt]);
    expect(inv.code).toBe(0);
    expect(Object.keys(JSON.parse(await readFile(receipt, 'utf8')).repositories).sort()).toEqual(
      await catalog(reg.url),
    );
    expect(proxy.requests.some((r) => r.path.startsWith('/v2/_catalog') && r.status === 400)).toBe(true);
    // A catalog that really is not there is still called unavailable.
    proxy.quirks.catalogMaxEntries = 0;
    const gone = await runCli(verifyArgs(proxy, '--json'));
    expect(gone.code).toBe(0);
    expect(JSON.parse(gone.stdout).catalog).toBe('unavailable');
  });

  it('3. a mount answered with an upload session falls back to an upload, counted as such', async () => {
    const { reg, proxy } = await proxied({ noMount: true });
    const imp = await runCli(importArgs(proxy, '--json'));
    expect(imp.code).toBe(0);
    const out = JSON.parse(imp.stdout);
    expect(proxy.requests.some((r) => r.method === 'POST' && r.path.includes('mount=') && r.status === 202)).toBe(true);
    expect(out.mounted).toBe(0);
    // Every (blob, repository) pair went up as an upload: 3 blobs per image.
    expect(out.uploaded.blobs).toBe(6);
    await expectComplete(reg);
  });

  it('4. manifest responses without Docker-Content-Digest: digests come from the bytes', async () => {
    const { reg, proxy } = await proxied({ stripDigest: true });
    const imp = await runCli(importArgs(proxy, '--json'));
    expect(imp.code).toBe(0);
    expect(JSON.parse(imp.stdout).verification.ok).toBe(true);
    await expectComplete(reg);
    const ver = await runCli(verifyArgs(proxy, '--json'));
    expect(ver.code).toBe(0);
    const again = await runCli(importArgs(proxy, '--json'));
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).images.every((i: { status: string }) => i.status === 'already present')).toBe(true);
    expect(proxy.requests.some((r) => r.method === 'HEAD' && r.path.includes('/manifests/'))).toBe(true);
  });

  it('5. bursts of 429 on HEAD are waited out', async () => {
    const { reg, proxy } = await proxied({ headBurst: { count: 12, retryAfter: [0, 1] } });
    const imp = await runCli(importArgs(proxy, '--concurrency', '4'));
    expect(imp.code).toBe(0);
    expect(proxy.requests.filter((r) => r.status === 429).length).toBe(12);
    await expectComplete(reg);
  });

  it.each(['name-unknown', 'project-403'] as const)(
    '6. repositories that must exist first (%s): refused up front, naming them, nothing pushed',
    async (style) => {
      const { reg, proxy } = await proxied({ projects: { exist: ['library'], style } });
      const res = await runCli(importArgs(proxy));
      expect(res.code).toBe(1);
      const last = res.stderr.trim().split('\n').at(-1)!;
      expect(last).toContain('quirk/app');
      expect(last).toContain('quirk/tool');
      expect(last).toMatch(/create project quirk/i);
      expect(last).toContain('nothing was pushed');
      expect(await catalog(reg.url)).toEqual([]);
      expect(proxy.requests.filter((r) => r.method === 'PUT' || r.method === 'PATCH')).toEqual([]);
      // Into a project that exists, the same bundle goes in.
      const into = await runCli(importArgs(proxy, '--repo-prefix', 'library'));
      expect(into.code).toBe(0);
      expect(Object.keys(await tagDigests(reg.url, 'library')).sort()).toEqual(
        meta.images.map((i) => `${i.repository}:${i.tag}`).sort(),
      );
    },
  );

  it.each(['relative', 'absolute', 'query'] as const)(
    '7. upload Location %s: followed, upload completes',
    async (location) => {
      const { reg, proxy } = await proxied({ location });
      const res = await runCli(importArgs(proxy, '--chunk-size', '64K'));
      expect(res.code).toBe(0);
      await expectComplete(reg);
      const uploads = proxy.requests.filter(
        (r) => (r.method === 'PUT' || r.method === 'PATCH') && !r.path.includes('/manifests/'),
      );
      expect(uploads.length).toBeGreaterThan(0);
      expect(uploads.every((r) => r.status === 201 || r.status === 202)).toBe(true);
      if (location === 'query') expect(uploads.every((r) => r.path.startsWith('/upload-session?session='))).toBe(true);
    },
  );

  it('7. upload Location on another host: followed without the credentials', async () => {
    const reg = await registry({ auth: 'htpasswd' });
    const basic = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;
    const proxy = await startQuirkProxy(reg.url, { location: 'other-host' }, basic);
    started.push(proxy);
    const res = await runCli(importArgs(proxy, '--username', reg.username!, '--password-stdin', '--json'), {
      input: reg.password!,
    });
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).verification.ok).toBe(true);
    const other = proxy.requests.filter((r) => r.host === 'other');
    expect(other.length).toBeGreaterThan(0);
    expect(other.filter((r) => r.authorization)).toEqual([]);
    expect(proxy.requests.filter((r) => r.host === 'main' && r.authorization).length).toBeGreaterThan(0);
  });

  it('8. a body limit: --chunk-size uploads in chunks; a chunk still too large is named', async () => {
    const limit = 64 * 1024;
    const { reg, proxy } = await proxied({ maxBody: limit });
    const res = await runCli(importArgs(proxy, '--chunk-size', '32K', '--json'));
    expect(res.code).toBe(0);
    await expectComplete(reg);
    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    expect(patches.length).toBeGreaterThanOrEqual(Math.ceil(BIG_LAYER / (32 * 1024)));
    expect(patches.every((r) => r.status === 202 && r.contentLength! <= 32 * 1024)).toBe(true);

    const fresh = await proxied({ maxBody: limit });
    const tooBig = await runCli(importArgs(fresh.proxy, '--chunk-size', '128K'));
    expect(tooBig.code).toBe(1);
    expect(tooBig.stderr).toMatch(/refuses request bodies of 131072 bytes \(413 Payload Too Large\).*--chunk-size/);
    expect((await tagDigests(fresh.reg.url))['quirk/app:v1']).toBeUndefined();

    // Without --chunk-size: the whole blob is refused (413), then chunks of the default size, refused too: named.
    const third = await proxied({ maxBody: limit });
    const plain = await runCli(importArgs(third.proxy));
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/413 Payload Too Large.*--chunk-size/);
    expect(third.proxy.requests.some((r) => r.method === 'PUT' && r.status === 413)).toBe(true);
    expect(third.proxy.requests.some((r) => r.method === 'PATCH')).toBe(true);
  });

  it('9. OCI artifact manifests refused (400 MANIFEST_INVALID): images imported, referrers reported, cosign tags kept', async () => {
    const source = await registry();
    const signed = await pushSignedImage(source, 'signed/app', 'v1');
    const withSignatures = join(work.path, 'signed.tar');
    const exported = await runCli([
      'export',
      `${source.host}/signed/app:v1`,
      '--plain-http',
      '-o',
      withSignatures,
      '-q',
    ]);
    expect(exported.code, exported.stderr).toBe(0);

    const { reg, proxy } = await proxied({ noArtifactManifests: true });
    const res = await runCli(['import', withSignatures, '--registry', proxy.host, '--plain-http', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { images: Array<{ reference: string; status: string; reason?: string }> };
    const refused = out.images.filter((i) => i.status === 'not accepted');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((i) => /does not accept this referrer/.test(i.reason ?? ''))).toBe(true);
    expect(out.images.filter((i) => i.status === 'failed')).toEqual([]);
    expect(proxy.requests.some((r) => r.method === 'PUT' && r.status === 400)).toBe(true);
    // The image and its cosign signature tag (the tag-schema fallback) are in the registry.
    const held = await tagDigests(reg.url);
    expect(held['signed/app:v1']).toBe(signed.digest);
    expect(held[`signed/app:${signed.signatureTag}`]).toBe(signed.signatureDigest);
    expect(res.stderr).toMatch(/does not accept this referrer/);
  });
});
