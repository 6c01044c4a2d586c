/**
 * The hashing threads behind SharedRing (ring.ts). Each runs from this
 * function's own source, like util/hash-worker.ts, so the same code works from
 * the compiled files, the test runner and a single bundled executable: it must
 * be self-contained, and gets its modules through `load`.
 *
 * Both threads read the same slots in the order they were published. The
 * `layer` thread hashes every byte: the layer's digest. The `blobs` thread
 * walks the same bytes along the list of units it was given (bytes made in
 * memory, skipped; or a range of a blob, hashed and compared with its digest
 * as it ends, and a blob cut into parts hashed whole too), and stops at the
 * first unit that does not match, saying which.
 */

import { workerSource } from '../util/worker-source.js';

/** A stretch of the layer: `digest` empty for bytes made in memory; `whole` on the last part of a blob in parts. */
export interface CheckUnit {
  size: number;
  digest: string;
  /** Set on a blob's first range when the blob is in parts: a whole hash starts there. */
  first?: boolean;
  whole?: string;
}

export interface RingWorkerData {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  slots: number;
  slotSize: number;
  /** The control word this thread counts its slots in; the next one says when it sleeps. */
  counter: number;
  role: 'layer' | 'blobs';
  units?: CheckUnit[];
}

/** Control words: see ring.ts, which owns them. */
export const CONTROL = { published: 0, signal: 1, end: 2, failed: 3, layer: 4, blobs: 6, lengths: 8 } as const;

type Load = (id: 'node:worker_threads' | 'node:crypto') => unknown;

export function ringWorkerMain(load: Load, control: typeof CONTROL): void {
  const { parentPort, workerData } = load('node:worker_threads') as typeof import('node:worker_threads');
  const { createHash } = load('node:crypto') as typeof import('node:crypto');
  const wd = workerData as RingWorkerData;
  const ctrl = new Int32Array(wd.control);
  const ring = new Uint8Array(wd.data);
  const sha = () => createHash('sha256');
  const layer = sha();
  const units = wd.units ?? [];
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

  const fail = () => {
    // The unit, and whether its range or its whole blob failed, in one word.
    Atomics.store(ctrl, control.failed, (unit + 1) * 2 + (wholeFailed ? 1 : 0));
    Atomics.notify(ctrl, wd.counter);
    parentPort?.postMessage('failed');
  };

  if (units[0]?.first) whole = sha();
  let next = 0;
  for (;;) {
    const seen = Atomics.load(ctrl, control.signal);
    const ready = Atomics.load(ctrl, control.published);
    for (; next < ready; next++) {
      const slot = next % wd.slots;
      const bytes = ring.subarray(slot * wd.slotSize, slot * wd.slotSize + ctrl[control.lengths + slot]!);
      if (wd.role === 'layer') layer.update(bytes);
      else if (!check(bytes)) return fail();
      Atomics.store(ctrl, wd.counter, next + 1);
      Atomics.notify(ctrl, wd.counter);
    }
    const end = Atomics.load(ctrl, control.end);
    if (end === 2) return;
    if (end === 1 && next >= Atomics.load(ctrl, control.published)) break;
    Atomics.store(ctrl, wd.counter + 1, 1);
    Atomics.wait(ctrl, control.signal, seen);
    Atomics.store(ctrl, wd.counter + 1, 0);
  }
  if (wd.role === 'layer') parentPort?.postMessage(layer.digest('hex'));
  else if (!settle() || unit < units.length) fail();
  else parentPort?.postMessage('ok');
}

/** The source for `new Worker(source, { eval: true })`. */
export function ringWorkerSource(): string {
  return workerSource(ringWorkerMain, CONTROL);
}
