import type { BundleMetadata } from './format.js';

/** One blob entry of a tar: a whole blob, or a part of one (a byte range of the blob `of`). */
export interface BlobEntry {
  /** The entry's name and content digest: the blob's own, or the part's. */
  digest: string;
  size: number;
  /** The blob the bytes come from, and where in it they start. */
  of: string;
  offset: number;
}

/**
 * The blob entries of a bundle, or of one volume of a set, in tar order. Parts
 * with equal content (a run of identical bytes) share one entry per volume.
 */
export function blobEntries(metadata: BundleMetadata): BlobEntry[] {
  const index = metadata.volumes?.index;
  const out: BlobEntry[] = [];
  const named = new Set<string>();
  const add = (e: BlobEntry) => {
    if (named.has(e.digest)) return;
    named.add(e.digest);
    out.push(e);
  };
  for (const b of metadata.blobs) {
    if (b.external) continue;
    if (b.parts) {
      let offset = 0;
      for (const p of b.parts) {
        if (p.volume === index) add({ digest: p.digest, size: p.size, of: b.digest, offset });
        offset += p.size;
      }
    } else if (index === undefined || b.volume === undefined || b.volume === index) {
      add({ digest: b.digest, size: b.size, of: b.digest, offset: 0 });
    }
  }
  return out;
}
