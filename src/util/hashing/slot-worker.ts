/**
 * The worker side of SlotRing (slot-ring.ts). These functions run on hashing
 * threads, put into a worker's source by `workerSource` (worker-source.ts):
 * each must be self-contained, with nothing from the module around it.
 */
import { workerSource, type WorkerRequire } from './worker-source.js';

/** Control words in the ring's shared control memory; each thread's counter and sleep flag follow them. */
export const RING_WORDS = { published: 0, signal: 1, end: 2, failed: 3, threads: 4 } as const;

/** What every thread of a SlotRing is given. */
export interface SlotWorkerData {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  slots: number;
  slotSize: number;
  /** The control word this thread counts its slots in; the next one says when it sleeps. */
  counter: number;
  /** Where the slots' lengths start in the control memory. */
  lengths: number;
  words: typeof RING_WORDS;
}

/**
 * Hands every published slot to `consume`, in order, and counts it done, until
 * the ring ends. Sleeps on the signal word when nothing is published, saying
 * so first, so the publisher wakes it only then. Returns 'end' once every
 * slot is consumed after the ring ended, 'abort' when it was stopped, or
 * 'refused' when `consume` returned false (the slot is not counted).
 */
export function consumeSlots(wd: SlotWorkerData, consume: (bytes: Uint8Array) => boolean): 'end' | 'abort' | 'refused' {
  const w = wd.words;
  const ctrl = new Int32Array(wd.control);
  const ring = new Uint8Array(wd.data);
  let next = 0;
  for (;;) {
    const seen = Atomics.load(ctrl, w.signal);
    const ready = Atomics.load(ctrl, w.published);
    for (; next < ready; next++) {
      const slot = next % wd.slots;
      const bytes = ring.subarray(slot * wd.slotSize, slot * wd.slotSize + ctrl[wd.lengths + slot]!);
      if (!consume(bytes)) return 'refused';
      Atomics.store(ctrl, wd.counter, next + 1);
      Atomics.notify(ctrl, wd.counter);
    }
    const end = Atomics.load(ctrl, w.end);
    if (end === 2) return 'abort';
    if (end === 1 && next >= Atomics.load(ctrl, w.published)) return 'end';
    Atomics.store(ctrl, wd.counter + 1, 1);
    Atomics.wait(ctrl, w.signal, seen);
    Atomics.store(ctrl, wd.counter + 1, 0);
  }
}

/**
 * Stops the ring with `code` (positive; its meaning is the ring user's) in the
 * failed word: the publisher sees it at its next wait, without a message.
 */
export function refuseSlots(wd: SlotWorkerData, code: number, port: { postMessage(m: unknown): void }): void {
  const ctrl = new Int32Array(wd.control);
  Atomics.store(ctrl, wd.words.failed, code);
  Atomics.notify(ctrl, wd.counter);
  port.postMessage('failed');
}

/** A thread that answers the sha256 (hex) of every byte published to the ring. */
export function digestWorkerMain(load: WorkerRequire, consume: typeof consumeSlots): void {
  const { parentPort, workerData } = load('node:worker_threads') as typeof import('node:worker_threads');
  const { createHash } = load('node:crypto') as typeof import('node:crypto');
  const hash = createHash('sha256');
  const outcome = consume(workerData as SlotWorkerData, (bytes) => {
    hash.update(bytes);
    return true;
  });
  if (outcome === 'end') parentPort?.postMessage(hash.digest('hex'));
}

/** The source of the thread that digests the whole ring (see `digestWorkerMain`). */
export function digestWorkerSource(): string {
  return workerSource(digestWorkerMain, consumeSlots);
}
