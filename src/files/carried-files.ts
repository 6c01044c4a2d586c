import type { BlobRecord, BundleMetadata } from '../bundle/format.js';
import { BundleFormatError } from '../bundle/reader.js';
import { printable } from '../util/text.js';

/** A file the bundle carries, as its metadata records it (already validated: the name is a plain file name). */
export interface CarriedFile {
  name: string;
  /** Permission bits to restore. */
  mode: number;
  /** Where export took it from: a URL without credentials or query, or a path. */
  source: string;
  /** The layer holding its bytes. */
  digest: string;
  size: number;
  mediaType: string;
  /** The layer's record: where its bytes are (volume, parts), or that a delta left it out. */
  blob: BlobRecord;
}

/** Mode of a file whose record names none (a record from a writer that kept none). */
const DEFAULT_MODE = 0o644;

/**
 * The files `metadata` carries, sorted by name: each the one layer of its
 * artifact. A name carried twice with the same bytes is listed once; twice
 * with different bytes, or an artifact of another shape than export writes,
 * is a bundle this tool did not write (exit 3).
 */
export function carriedFiles(metadata: BundleMetadata): CarriedFile[] {
  const records = new Map(metadata.blobs.map((b) => [b.digest, b]));
  const byName = new Map<string, CarriedFile>();
  for (const image of metadata.images) {
    if (image.carried?.kind !== 'file') continue;
    const layers = image.blobs.map((d) => records.get(d)).filter((b) => b?.role === 'layer');
    if (layers.length !== 1)
      throw new BundleFormatError(
        `the carried file ${printable(image.carried.name)} has ${layers.length} layers, not the one export writes; the bundle was altered`,
      );
    const blob = layers[0]!;
    const file: CarriedFile = {
      name: image.carried.name,
      mode: image.carried.mode ?? DEFAULT_MODE,
      source: image.carried.source,
      digest: blob.digest,
      size: blob.size,
      mediaType: blob.mediaType,
      blob,
    };
    const other = byName.get(file.name);
    if (other && other.digest !== file.digest)
      throw new BundleFormatError(
        `the bundle carries two files named ${printable(file.name)} with different bytes; the bundle was altered`,
      );
    byName.set(file.name, other ?? file);
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
