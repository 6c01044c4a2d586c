import { createHash } from 'node:crypto';
import { digestAlgorithm } from '../../oci/digest.js';
import { parseManifest, type ParsedManifest } from '../../oci/manifest.js';
import { TarFormatError } from '../../tar/reader.js';
import type { BlobRecord } from '../format.js';
import { BundleFormatError, isSmallDocument } from '../reader.js';

/** What reading one blob entry found. */
export interface BlobSeen {
  size: number;
  /** The bytes are not the ones the digest names (bit rot, a copy cut short): the images using it are damaged. */
  damage?: string;
  /**
   * The bytes match their digest but are no document a bundle may hold (past a
   * bound, not JSON, not a manifest): someone wrote them, so the bundle was altered.
   */
  invalid?: string;
  parsed?: ParsedManifest;
}

/**
 * Hashes one blob from borrowed chunks, keeping and parsing the bytes only of
 * manifests and indexes. Which of damage and invalid a problem is decides
 * whether one image or the whole bundle is refused: a digest that does not
 * match is bit rot; a document that matches its digest and still breaks a
 * bound was made that way.
 */
export async function checkBlob(
  digest: string,
  size: number,
  chunks: AsyncIterable<Buffer>,
  record: BlobRecord | undefined,
): Promise<BlobSeen> {
  const isDocument = record ? record.role === 'manifest' || record.role === 'index' : isSmallDocument(size);
  const keep = isDocument && isSmallDocument(size);
  const kept: Buffer[] = [];
  const hash = createHash(digestAlgorithm(digest));
  let got = 0;
  try {
    for await (const c of chunks) {
      hash.update(c);
      got += c.length;
      if (keep) kept.push(Buffer.from(c));
    }
  } catch (err) {
    if (!(err instanceof BundleFormatError) && !(err instanceof TarFormatError)) throw err;
    return { size, damage: `cut short: ${err.message}` };
  }
  const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
  if (record && record.size !== size)
    return { size: got, damage: `size is ${size} bytes, the metadata says ${record.size}` };
  if (actual !== digest) return { size: got, damage: `content does not match its digest (got ${actual})` };
  if (!isDocument) return { size: got };
  if (!keep)
    return { size: got, invalid: `a ${record?.role ?? 'manifest'} of ${size} bytes exceeds the manifest size limit` };
  try {
    return { size: got, parsed: parseManifest(Buffer.concat(kept), record?.mediaType, digest) };
  } catch (err) {
    // A blob the metadata does not call a document may be anything that parses or not.
    return record ? { size: got, invalid: `not a usable ${record.role}: ${(err as Error).message}` } : { size: got };
  }
}
