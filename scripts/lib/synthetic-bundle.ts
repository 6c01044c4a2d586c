/**
 * A large, valid bundle made without a registry, for benchmarks of the reading
 * side: `images` OCI images, each with layers of random bytes, written by the
 * tool's own bundle writer. Random bytes stand in for compressed layers (they do
 * not compress either), and crypto.randomBytes makes gigabytes in seconds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobCache } from '../../src/export/blob-cache.js';
import type { BlobRecord, ImageRecord } from '../../src/bundle/format.js';
import { buildMetadata } from '../../src/bundle/metadata.js';
import { writeBundle } from '../../src/export/cache-writer.js';
import { MediaType } from '../../src/oci/media-types.js';
import { sha256Digest } from './digest.js';

const CHUNK = 4 << 20;

async function randomBlob(cache: BlobCache, size: number): Promise<string> {
  const hash = createHash('sha256');
  const tmp = join(cache.root, 'tmp', `synthetic-${process.pid}-${randomBytes(4).toString('hex')}`);
  const out = createWriteStream(tmp);
  for (let left = size; left > 0; left -= CHUNK) {
    const chunk = randomBytes(Math.min(CHUNK, left));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const digest = `sha256:${hash.digest('hex')}`;
  await rename(tmp, cache.path(digest));
  return digest;
}

async function jsonBlob(cache: BlobCache, doc: unknown): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(doc));
  const digest = sha256Digest(bytes);
  await cache.putBytes(digest, bytes);
  return { digest, size: bytes.length };
}

export async function writeSyntheticBundle(
  dir: string,
  output: string,
  totalBytes: number,
  images = 8,
  layersPerImage = 4,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const cache = new BlobCache(join(dir, 'cache'));
  await cache.init();
  const layerSize = Math.max(1024, Math.floor(totalBytes / (images * layersPerImage)));
  const blobs: BlobRecord[] = [];
  const records: ImageRecord[] = [];
  const manifests: BlobRecord[] = [];
  for (let i = 0; i < images; i++) {
    const layers = [];
    for (let l = 0; l < layersPerImage; l++) {
      const digest = await randomBlob(cache, layerSize);
      layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: layerSize });
      blobs.push({ digest, size: layerSize, mediaType: layers[l]!.mediaType, role: 'layer' });
    }
    const config = await jsonBlob(cache, {
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
      n: i,
    });
    blobs.push({ ...config, mediaType: MediaType.ociConfig, role: 'config' });
    const manifest = await jsonBlob(cache, {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, ...config },
      layers,
    });
    manifests.push({ ...manifest, mediaType: MediaType.ociManifest, role: 'manifest' });
    const all = [manifest.digest, config.digest, ...layers.map((l) => l.digest)].sort();
    records.push({
      reference: `bench.local/synthetic/image-${i}:v1`,
      registry: 'bench.local',
      repository: `synthetic/image-${i}`,
      tag: 'v1',
      digest: manifest.digest,
      mediaType: MediaType.ociManifest,
      size: manifest.size,
      platforms: [],
      absent: [],
      blobs: all,
      bytes: layerSize * layersPerImage + config.size + manifest.size,
    });
  }
  const ordered = [
    ...blobs.sort((a, b) => (a.digest < b.digest ? -1 : 1)),
    ...manifests.sort((a, b) => (a.digest < b.digest ? -1 : 1)),
  ];
  const metadata = buildMetadata(records, ordered, {
    tool: { name: 'airgap-bundle', version: 'bench' },
    platforms: null,
  });
  await writeBundle(cache, metadata, { output });
  await writeFile(join(dir, 'README'), 'synthetic benchmark bundle; safe to delete\n');
}
