import type { BlobLocation } from '../bundle/blob-ranges.js';
import type { BundleMetadata } from '../bundle/format.js';
import { BundleFormatError, openBundle } from '../bundle/reader.js';

/** One bundle file as served: its metadata and where each of its blob entries sits. */
export interface LoadedBundle {
  path: string;
  metadata: BundleMetadata;
  entries: Map<string, BlobLocation>;
}

/**
 * Reads what serving needs and nothing more: the metadata, then the tar
 * headers, seeking over every payload (a few hundred small reads for a 1 GiB
 * bundle). The reader refuses anything the metadata does not describe; a
 * refused entry means the archive was altered, and it is not served at all.
 * Payloads are checked later, as they are served.
 */
export async function loadBundle(path: string): Promise<LoadedBundle> {
  const reading = await openBundle(path);
  let metadata: BundleMetadata | undefined;
  const entries = new Map<string, BlobLocation>();
  try {
    for await (const entry of reading.entries()) {
      if (entry.type === 'metadata') metadata = entry.metadata;
      else if (entry.type === 'blob') entries.set(entry.digest, { offset: entry.offset, size: entry.size });
      else if (entry.type === 'rejected')
        throw new BundleFormatError(
          `${path}: entry "${entry.name}" refused (${entry.reason}); the archive was altered, so it is not served; copy the bundle again`,
        );
    }
  } finally {
    await reading.close();
  }
  if (!metadata) throw new BundleFormatError(`${path}: no metadata`);
  return { path, metadata, entries };
}
