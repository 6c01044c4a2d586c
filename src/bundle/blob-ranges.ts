import { createReadStream } from 'node:fs';
import type { Transform } from 'node:stream';
import { DigestMismatchError, verified, VerifyingStream } from '../oci/digest.js';

/** Where a blob's bytes sit in the bundle file. */
export interface BlobLocation {
  offset: number;
  size: number;
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
  return verified(
    createReadStream(path, { start: at.offset, end: at.offset + at.size - 1, highWaterMark: 1 << 20 }),
    { digest, size: at.size },
    onBytes,
  );
}

/** A small blob (a manifest) read whole, or undefined when it does not match its digest. */
export async function readSmallBlob(
  path: string,
  digest: string,
  at: BlobLocation,
  limit: number,
): Promise<Buffer | undefined> {
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
