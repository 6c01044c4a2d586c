import { bytesEntry, directoryEntry, endOfArchive, fileEntry, type EntryStamp } from '../tar/entries.js';
import { compare, type CachePlan } from './plan.js';

/**
 * The tree as one tar, the single layer of the `oci` wrapping: every folder
 * and file sorted by name (as Talos's builder lays its layer out), files 0644,
 * folders 0755, owner 0, every time stamp the same (0, or SOURCE_DATE_EPOCH).
 * The same plan gives the same bytes on every machine.
 */

/** Bytes in memory (headers, manifests, padding), or a config or layer to copy from the bundle. */
export type LayerPiece = Buffer | { blob: string; size: number };

export function* layerPieces(plan: CachePlan, stamp: EntryStamp): Generator<LayerPiece> {
  const entries = [
    ...plan.directories.map((path) => ({ path, dir: true as const })),
    ...plan.files.map((f) => ({ ...f, dir: false as const })),
  ].sort((a, b) => compare(a.path, b.path));
  for (const e of entries) {
    if (e.dir) yield* directoryEntry(e.path, stamp);
    else if ('bytes' in e) yield* bytesEntry(e.path, e.bytes, stamp);
    else
      for (const piece of fileEntry(e.path, e.blob, e.size, stamp))
        yield Buffer.isBuffer(piece) ? piece : { blob: e.blob, size: e.size };
  }
  yield endOfArchive();
}

/** The layer's size, known before a byte is copied: for the space check and the progress total. */
export function layerSize(plan: CachePlan, stamp: EntryStamp): number {
  let n = 0;
  for (const p of layerPieces(plan, stamp)) n += Buffer.isBuffer(p) ? p.length : p.size;
  return n;
}
