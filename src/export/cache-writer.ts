import { rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { BlobCache } from './blob-cache.js';
import { carriedBytes, type BundleMetadata } from '../bundle/format.js';
import { tarPieces, bundleDocuments } from '../bundle/layout.js';
import { HashingRing } from '../util/hashing/hashing-ring.js';
import { partialPath, removeStalePartials } from '../util/atomic-file.js';
import { activePartials, publishBundle, type WriteResult } from './publish.js';
import { isDiskFull } from '../util/disk-full.js';

export interface WriteOptions {
  output: string;
  /** Signs the metadata bytes; the signature is stored after the metadata and as NAME.tar.sig. */
  sign?: (metadataBytes: Buffer) => Buffer;
  /** From SOURCE_DATE_EPOCH: sets entry mtimes (the metadata records it too). */
  sourceDateEpoch?: number;
  onBytes?: (n: number) => void;
  /** Settles when a blob is in the cache: the tar can be written while downloads go on. */
  ready?: (digest: string) => Promise<void>;
}

/**
 * Writes the bundle tar and its `sha256sum` sidecar from blobs in the cache, in
 * tar order. Both are written under temporary names in the destination folder
 * and renamed only when complete, so the final name never holds a partial bundle.
 */
export async function writeBundle(
  cache: BlobCache,
  metadata: BundleMetadata,
  opts: WriteOptions,
): Promise<WriteResult> {
  await removeStalePartials(opts.output);
  const tmp = partialPath(opts.output);
  const docs = bundleDocuments(metadata, opts);
  let sink: HashingRing | undefined;
  activePartials.add(tmp);
  try {
    sink = await HashingRing.toFile(tmp, opts.onBytes);
    for (const piece of tarPieces(metadata, docs)) {
      if (Buffer.isBuffer(piece)) await sink.append(piece);
      else {
        await opts.ready?.(piece.of);
        await sink.appendFile(cache.path(piece.of), piece.offset, piece.size);
      }
    }
    const bytes = sink.bytes;
    const sha256 = await sink.finish();
    sink = undefined;
    return await publishBundle(tmp, opts.output, {
      bytes,
      sha256,
      metadata,
      ...(docs.signature ? { signature: docs.signature } : {}),
    });
  } catch (err) {
    const written = sink?.bytes ?? 0;
    await sink?.close();
    await rm(tmp, { force: true });
    throw diskFull(err, opts.output, written, metadata) ?? err;
  } finally {
    activePartials.delete(tmp);
  }
}

/** The message for a full disk while a bundle is written, or undefined for any other error. */
function diskFull(err: unknown, output: string, written: number, metadata: BundleMetadata): Error | undefined {
  if (!isDiskFull(err)) return undefined;
  const needed = carriedBytes(metadata.blobs);
  return new Error(
    `no space left in ${dirname(output)} while writing ${basename(output)}: ${written} of about ${needed} bytes written (removed); free space or choose another -o folder, then rerun (fetched blobs stay in the cache)`,
  );
}
