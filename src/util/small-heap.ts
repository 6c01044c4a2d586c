import v8 from 'node:v8';

let applied = false;

/**
 * V8 sizes its old generation for throughput: on a machine with gigabytes free
 * it lets garbage pile up to well over 100 MiB before its first full
 * collection. A bundle of thousands of images makes that garbage in
 * proportion to its image count (request objects, parsed manifests, metadata
 * strings), so the peak RSS grew with the image count while the data alive
 * stayed small. Favouring size makes V8 collect before growing: measured at
 * 3,000 images, the import's peak RSS drops from ~280 to ~150 MiB. The flag
 * may be set while running; it changes how the heap grows from then on.
 */
export function favourSmallHeap(): void {
  if (applied) return;
  applied = true;
  v8.setFlagsFromString('--optimize-for-size');
}
