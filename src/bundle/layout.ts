import {
  INDEX_NAME,
  MAX_INDEX_BYTES,
  METADATA_NAME,
  SIGNATURE_NAME,
  OCI_LAYOUT_NAME,
  blobEntryName,
  type BundleMetadata,
} from './format.js';
import { bytesEntry, directoryEntry, endOfArchive, fileEntry, type EntryStamp } from '../tar/entries.js';
import { buildIndex } from './layout-index.js';
import { MetadataError, parseMetadata } from './metadata.js';
import { blobEntries } from './volume-content.js';

/**
 * The bytes of a bundle tar, in order, as both writers (in place and through
 * the cache) lay them down: the documents, the layout files, then every blob
 * entry. Names and sizes decide every offset, so the layout is fixed as soon
 * as the manifests are known.
 */

/** The bundle would be refused by the reader on the isolated side. */
export class UnreadableBundleError extends Error {
  override name = 'UnreadableBundleError';
}

/**
 * No bundle is written that the isolated side would refuse: the metadata goes
 * through the reader's own validation, and index.json through its size limit,
 * before the first byte of the bundle is written.
 */
function assertReadable(metadataBytes: Buffer, indexBytes: Buffer): void {
  const advice = 'split the image list into several bundles';
  if (indexBytes.length > MAX_INDEX_BYTES)
    throw new UnreadableBundleError(
      `index.json would be ${indexBytes.length} bytes, more than the ${MAX_INDEX_BYTES} a bundle may hold; ${advice}`,
    );
  try {
    parseMetadata(metadataBytes);
  } catch (err) {
    if (!(err instanceof MetadataError)) throw err;
    throw new UnreadableBundleError(`the bundle would be refused when read (${err.message}); ${advice}`);
  }
}

/** A byte range of a blob, copied into the tar as it is (a whole blob, or a part of one). */
export interface BlobPiece {
  of: string;
  offset: number;
  size: number;
}

export interface BundleDocuments {
  metadataBytes: Buffer;
  signature?: Buffer;
  stamp: EntryStamp;
}

/** What the documents depend on besides the metadata. */
export interface DocumentOptions {
  /** Signs the metadata bytes; the signature is stored after the metadata and as NAME.tar.sig. */
  sign?: (metadataBytes: Buffer) => Buffer;
  /** From SOURCE_DATE_EPOCH: sets entry mtimes (the metadata records it too). */
  sourceDateEpoch?: number;
}

/** The bundle's documents: metadata bytes, its signature, the entry stamp. */
export function bundleDocuments(metadata: BundleMetadata, opts: DocumentOptions): BundleDocuments {
  const metadataBytes = Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`);
  assertReadable(metadataBytes, buildIndex(metadata.images));
  const signature = opts.sign?.(metadataBytes);
  return {
    metadataBytes,
    ...(signature ? { signature } : {}),
    stamp: { mtime: new Date((opts.sourceDateEpoch ?? 0) * 1000) },
  };
}

/** Every byte of the tar, in order: bytes in memory, and ranges of blobs to copy. */
export function* tarPieces(metadata: BundleMetadata, docs: BundleDocuments): Generator<Buffer | BlobPiece> {
  const { stamp } = docs;
  yield* bytesEntry(METADATA_NAME, docs.metadataBytes, stamp);
  if (docs.signature) yield* bytesEntry(SIGNATURE_NAME, docs.signature, stamp);
  yield* bytesEntry(OCI_LAYOUT_NAME, Buffer.from('{"imageLayoutVersion":"1.0.0"}\n'), stamp);
  yield* bytesEntry(INDEX_NAME, buildIndex(metadata.images), stamp);
  yield* directoryEntry('blobs', stamp);
  const algorithms = [...new Set(metadata.blobs.map((b) => b.digest.split(':')[0]!))].sort();
  for (const alg of algorithms) yield* directoryEntry(`blobs/${alg}`, stamp);
  for (const e of blobEntries(metadata)) {
    for (const piece of fileEntry(blobEntryName(e.digest), e.of, e.size, stamp, e.offset)) {
      yield Buffer.isBuffer(piece) ? piece : { of: piece.file, offset: piece.offset, size: piece.size };
    }
  }
  yield endOfArchive();
}
