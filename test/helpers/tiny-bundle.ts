// A small, valid, byte-reproducible bundle made without a registry, by the tool's own writer: an OCI
// index with two platform manifests and a Docker single-arch image. The seed fixes every byte, so a
// fuzz case that fails can be rebuilt exactly.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobCache } from '../../src/export/blob-cache.js';
import type { BlobRecord, BundleMetadata, ImageRecord } from '../../src/bundle/format.js';
import { buildMetadata } from '../../src/bundle/metadata.js';
import { writeBundle } from '../../src/export/cache-writer.js';
import { prng } from './prng.js';
import { sha256Digest } from '../../scripts/lib/digest.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

const digestOf = sha256Digest;

export async function writeTinyBundle(dir: string, output: string, seed = 1): Promise<BundleMetadata> {
  const rnd = prng(seed);
  await mkdir(dir, { recursive: true });
  const cache = new BlobCache(join(dir, 'cache'));
  await cache.init();
  const records = new Map<string, BlobRecord>();
  const put = async (bytes: Buffer, mediaType: string, role: BlobRecord['role']) => {
    const digest = digestOf(bytes);
    await cache.putBytes(digest, bytes);
    records.set(digest, { digest, size: bytes.length, mediaType, role });
    return { mediaType, digest, size: bytes.length };
  };
  const random = (n: number) => Buffer.from(Array.from({ length: n }, () => rnd.int(0, 255)));
  const platformImage = async (name: string, platform: { os: string; architecture: string }, docker: boolean) => {
    const layers = [];
    for (let i = 0; i < (docker ? 1 : 2); i++)
      layers.push(await put(random(rnd.int(300, 2500)), docker ? DOCKER_LAYER : OCI_LAYER, 'layer'));
    const config = await put(
      Buffer.from(
        JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, name }),
      ),
      docker ? DOCKER_CONFIG : OCI_CONFIG,
      'config',
    );
    const manifest = { schemaVersion: 2, mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST, config, layers };
    return put(
      Buffer.from(docker ? JSON.stringify(manifest, null, 3) : JSON.stringify(manifest)),
      manifest.mediaType,
      'manifest',
    );
  };

  const amd = await platformImage('app', { os: 'linux', architecture: 'amd64' }, false);
  const arm = await platformImage('app', { os: 'linux', architecture: 'arm64' }, false);
  const index = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
          { ...arm, platform: { os: 'linux', architecture: 'arm64' } },
        ],
      }),
    ),
    OCI_INDEX,
    'index',
  );
  const single = await platformImage('tool', { os: 'linux', architecture: 'amd64' }, true);

  const blobsOf = (tops: string[]): string[] => {
    const out = new Set<string>();
    const walk = (d: string) => {
      out.add(d);
      const r = records.get(d)!;
      if (r.role !== 'manifest' && r.role !== 'index') return;
      // The documents are ours: re-read them from the cache to find their children.
      const doc = JSON.parse(readFileSync(cache.path(d), 'utf8')) as {
        manifests?: Array<{ digest: string }>;
        config?: { digest: string };
        layers?: Array<{ digest: string }>;
      };
      for (const c of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])])
        walk(c.digest);
    };
    tops.forEach(walk);
    return [...out].sort();
  };
  const image = (
    reference: string,
    repository: string,
    top: { digest: string; size: number; mediaType: string },
    platforms: ImageRecord['platforms'],
  ): ImageRecord => {
    const blobs = blobsOf([top.digest]);
    return {
      reference,
      registry: 'registry.example',
      repository,
      tag: 'v1',
      digest: top.digest,
      mediaType: top.mediaType,
      size: top.size,
      platforms,
      absent: [],
      blobs,
      bytes: blobs.reduce((s, d) => s + records.get(d)!.size, 0),
    };
  };
  const images = [
    image('registry.example/fuzz/app:v1', 'fuzz/app', index, [
      { platform: 'linux/amd64', digest: amd.digest, mediaType: OCI_MANIFEST, carried: true },
      { platform: 'linux/arm64', digest: arm.digest, mediaType: OCI_MANIFEST, carried: true },
    ]),
    image('registry.example/fuzz/tool:v1', 'fuzz/tool', single, []),
  ];
  const order = { config: 0, layer: 0, manifest: 1, index: 2 } as const;
  const blobs = [...records.values()].sort((a, b) => order[a.role] - order[b.role] || (a.digest < b.digest ? -1 : 1));
  const metadata = buildMetadata(images, blobs, { tool: { name: 'airgap-bundle', version: 'fuzz' }, platforms: null });
  await writeBundle(cache, metadata, { output });
  return metadata;
}
