import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { BlobPart, BlobRecord, BundleMetadata } from '../bundle/format.js';
import { volumeLayout } from '../bundle/volumes.js';

/**
 * Splits a bundle into volumes of at most `maxBytes` each. Every volume is a
 * complete tar with the metadata, the layout files and every manifest (they
 * are small, and any volume can then push any image whose blobs are present);
 * configs and layers are packed in tar order. A blob larger than a volume is
 * cut into parts, each hashed here from `blobPath` so that every part carries
 * its own digest check.
 */
export async function planVolumes(
  metadata: BundleMetadata,
  maxBytes: number,
  blobPath: (digest: string) => string,
): Promise<BundleMetadata> {
  const layout = volumeLayout(metadata, maxBytes);
  const blobs: BlobRecord[] = [];
  for (const b of layout.blobs) blobs.push(b.parts ? { ...b, parts: await hashParts(blobPath(b.digest), b.parts) } : b);
  const set = createHash('sha256')
    .update(JSON.stringify({ ...metadata, blobs }))
    .digest('hex');
  return { ...metadata, blobs, volumes: { index: 1, count: layout.count, set } };
}

async function hashParts(file: string, parts: BlobPart[]): Promise<BlobPart[]> {
  const out: BlobPart[] = [];
  let offset = 0;
  for (const p of parts) {
    const hash = createHash('sha256');
    for await (const c of createReadStream(file, { start: offset, end: offset + p.size - 1, highWaterMark: 1 << 20 }))
      hash.update(c as Buffer);
    out.push({ ...p, digest: `sha256:${hash.digest('hex')}` });
    offset += p.size;
  }
  return out;
}
