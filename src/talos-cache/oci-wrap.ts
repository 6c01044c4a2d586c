import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Platform } from '../oci/descriptor.js';
import { digestHex, sha256Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import type { EntryStamp } from '../tar/entries.js';
import type { BlobSpan } from './blob-check.js';
import { copyLayer } from './layer-copy.js';
import { layerPieces } from './layer-tar.js';
import type { CachePlan } from './plan.js';
import type { BundleSource } from './source.js';
import { writeBytes } from './file-writer.js';

/**
 * The `oci` layout, what the Talos imager's `--image-cache` takes: an OCI image
 * layout holding ONE image (OCI manifest, OCI config, the platform given)
 * whose single uncompressed layer is the tree as a tar. The layer is streamed
 * straight from the bundle into its file and hashed as it is copied (see
 * layer-copy.ts); nothing of the tree is laid down on disk first.
 */

const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar';

export interface OciResult {
  manifest: { digest: string; size: number };
  layer: { digest: string; size: number };
}

export async function writeOciLayout(
  root: string,
  plan: CachePlan,
  source: BundleSource,
  platform: Platform,
  stamp: EntryStamp,
  onBytes: (n: number) => void,
): Promise<OciResult> {
  const blobs = join(root, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true, mode: 0o755 });
  const partial = join(blobs, '.layer.partial');
  const layer = await copyLayer(partial, [...layerSpans(plan, source, stamp)], onBytes);
  await rename(partial, join(blobs, digestHex(layer.digest)));
  const config = await writeBlob(blobs, configBytes(layer.digest, platform, stamp));
  const manifest = await writeBlob(blobs, manifestBytes(config, layer));
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [{ mediaType: MediaType.ociManifest, digest: manifest.digest, size: manifest.size, platform }],
  };
  await writeBytes(join(root, 'index.json'), Buffer.from(JSON.stringify(index)));
  await writeBytes(join(root, 'oci-layout'), Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  return { manifest, layer };
}

function* layerSpans(plan: CachePlan, source: BundleSource, stamp: EntryStamp): Generator<Buffer | BlobSpan> {
  for (const piece of layerPieces(plan, stamp)) yield Buffer.isBuffer(piece) ? piece : source.span(piece.blob);
}

async function writeBlob(dir: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256Digest(bytes);
  await writeBytes(join(dir, digestHex(digest)), bytes);
  return { digest, size: bytes.length };
}

/** The image's config: its platform, one layer, and a creation time from the stamp (never the clock). */
function configBytes(diffId: string, platform: Platform, stamp: EntryStamp): Buffer {
  const config = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: stamp.mtime.toISOString().replace('.000Z', 'Z'),
    rootfs: { type: 'layers', diff_ids: [diffId] },
    config: {},
  };
  return Buffer.from(JSON.stringify(config));
}

function manifestBytes(config: { digest: string; size: number }, layer: { digest: string; size: number }): Buffer {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
    layers: [{ mediaType: LAYER_TYPE, digest: layer.digest, size: layer.size }],
  };
  return Buffer.from(JSON.stringify(manifest));
}
