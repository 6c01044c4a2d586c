import { createReadStream } from 'node:fs';
import type { Transform } from 'node:stream';
import { DigestMismatchError, verified, VerifyingStream } from '../oci/digest.js';
import type { BundleMetadata } from './format.js';
import { BundleFormatError, openBundle } from './reader.js';

export interface BlobLocation {
  offset: number;
  size: number;
}

export interface BundleIndex {
  metadata: BundleMetadata;
  blobs: Map<string, BlobLocation>;
  /** Entries refused by the reader (never read, never pushed). */
  rejected: Array<{ name: string; reason: string }>;
}

/**
 * Where every blob sits in the tar, found by walking the headers and seeking
 * over the payloads: for a multi-GB bundle this reads a few MB. Entries are
 * validated as in any read (names, types, duplicates); a truncated archive
 * fails here, before anything is pushed.
 */
export async function indexBundle(path: string): Promise<BundleIndex> {
  const reading = await openBundle(path);
  let metadata: BundleMetadata | undefined;
  const blobs = new Map<string, BlobLocation>();
  const rejected: BundleIndex['rejected'] = [];
  try {
    for await (const entry of reading.entries()) {
      if (entry.type === 'metadata') metadata = entry.metadata;
      else if (entry.type === 'blob') blobs.set(entry.digest, { offset: entry.offset, size: entry.size });
      else if (entry.type === 'rejected') rejected.push({ name: entry.name, reason: entry.reason });
    }
  } finally {
    await reading.close();
  }
  if (!metadata) throw new BundleFormatError(`${path}: no metadata`);
  return { metadata, blobs, rejected };
}

/**
 * A blob's bytes straight from the bundle file, hashed as they are read: the
 * stream fails at its end if they do not match, so a damaged blob never
 * completes an upload. Each call opens a fresh read, so an upload can be retried.
 */
export function readBlob(path: string, digest: string, at: BlobLocation, onBytes?: (n: number) => void): Transform {
  if (at.size === 0) {
    const empty = new VerifyingStream({ digest, size: 0 }, onBytes);
    empty.end();
    return empty;
  }
  return verified(createReadStream(path, { start: at.offset, end: at.offset + at.size - 1, highWaterMark: 1 << 20 }), { digest, size: at.size }, onBytes);
}

/** A small blob (a manifest) read whole, or undefined when it does not match its digest. */
export async function readSmallBlob(path: string, digest: string, at: BlobLocation, limit: number): Promise<Buffer | undefined> {
  if (at.size > limit) return undefined;
  const parts: Buffer[] = [];
  try {
    for await (const c of readBlob(path, digest, at)) parts.push(c as Buffer);
  } catch (err) {
    if (err instanceof DigestMismatchError) return undefined;
    throw err;
  }
  return Buffer.concat(parts);
}
