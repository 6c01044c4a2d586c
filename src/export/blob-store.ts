import type { Readable } from 'node:stream';
import type { BlobRecord, ImageRecord } from '../bundle/format.js';

/**
 * Where export puts the blobs it fetches, verified: the blob cache (kept between
 * runs), or their final place inside the bundle being written.
 */
export interface BlobStore {
  /** A manifest or index, held in memory once resolved; checked against its digest. */
  putBytes(digest: string, bytes: Buffer): Promise<void>;
  /** Called once every blob is known, before any is looked up or fetched. */
  prepare?(content: { images: ImageRecord[]; blobs: BlobRecord[] }): Promise<void>;
  /** True when the blob is already there and intact (re-hashed, not trusted). */
  has(digest: string, size: number): Promise<boolean>;
  /** Streams `source` in, verifying digest and size on the way. */
  put(digest: string, size: number, source: Readable, onBytes?: (n: number) => void): Promise<void>;
}
