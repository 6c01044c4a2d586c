/**
 * The blob-checking thread behind SharedRing (ring.ts), run from this
 * function's own source with the ring's loop (util/hashing/slot-worker.ts): it
 * must be self-contained, and gets its modules through `load`.
 *
 * It walks the layer's bytes, slot by slot as they are published, along the
 * list of units it was given (bytes made in memory, skipped; or a range of a
 * blob, hashed and compared with its digest as it ends, and a blob cut into
 * parts hashed whole too), and stops at the first unit that does not match,
 * saying which.
 */

import { consumeSlots, refuseSlots, type SlotWorkerData } from '../util/hashing/slot-worker.js';
import { workerSource, type WorkerRequire } from '../util/hashing/worker-source.js';

/** A stretch of the layer: `digest` empty for bytes made in memory; `whole` on the last part of a blob in parts. */
export interface CheckUnit {
  size: number;
  digest: string;
  /** Set on a blob's first range when the blob is in parts: a whole hash starts there. */
  first?: boolean;
  whole?: string;
}

export function blobCheckMain(load: WorkerRequire, consume: typeof consumeSlots, refuse: typeof refuseSlots): void {
  const { parentPort, workerData } = load('node:worker_threads') as typeof import('node:worker_threads');
  const { createHash } = load('node:crypto') as typeof import('node:crypto');
  const wd = workerData as SlotWorkerData & { units: CheckUnit[] };
  const sha = () => createHash('sha256');
  const units = wd.units;
  let unit = 0;
  let left = units[0]?.size ?? 0;
  let part = sha();
  let whole: ReturnType<typeof sha> | undefined;

  /** Set when the blob in parts, not the unit's own range, did not match. */
  let wholeFailed = false;
  /** Ends every unit with nothing left to read; false at the first that does not match. */
  const settle = (): boolean => {
    while (unit < units.length && left === 0) {
      const u = units[unit]!;
      if (u.digest !== '') {
        if (`sha256:${part.digest('hex')}` !== u.digest) return false;
        part = sha();
        wholeFailed = u.whole !== undefined && `sha256:${whole?.digest('hex')}` !== u.whole;
        if (wholeFailed) return false;
        if (u.whole !== undefined) whole = undefined;
      }
      left = units[++unit]?.size ?? 0;
      if (units[unit]?.first) whole = sha();
    }
    return true;
  };
  const check = (bytes: Uint8Array): boolean => {
    for (let at = 0; at < bytes.length;) {
      if (!settle()) return false;
      if (unit >= units.length) return false;
      const take = Math.min(left, bytes.length - at);
      if (units[unit]!.digest !== '') {
        part.update(bytes.subarray(at, at + take));
        whole?.update(bytes.subarray(at, at + take));
      }
      at += take;
      left -= take;
    }
    return settle();
  };
  // The unit, and whether its range or its whole blob failed, in one word.
  const fail = () => refuse(wd, (unit + 1) * 2 + (wholeFailed ? 1 : 0), parentPort!);

  if (units[0]?.first) whole = sha();
  const outcome = consume(wd, check);
  if (outcome === 'refused') fail();
  else if (outcome === 'end') {
    if (!settle() || unit < units.length) fail();
    else parentPort?.postMessage('ok');
  }
}

/** The source for `new Worker(source, { eval: true })`. */
export function blobCheckSource(): string {
  return workerSource(blobCheckMain, consumeSlots, refuseSlots);
}
