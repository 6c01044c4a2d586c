import { Worker } from 'node:worker_threads';
import { hashWorkerSource, type HashWorkerReply, type HashWorkerRequest } from './sha256-worker.js';

/**
 * sha256 computed on a worker thread over shared memory: the main thread reads
 * a file into a ring of slots and keeps hashing entries, while this hashes the
 * whole file on the second core. Nothing is copied; a slot is reused only after
 * the worker has released it. A part of the file (one blob) can be hashed on its
 * own as well, and taken back: the whole-file hash returns to where it began.
 *
 * One thread, told of each slot by a message: the parts need their order among
 * the slots, which messages keep. SlotRing (slot-ring.ts) is the way for
 * several threads on the same slots, which count slots in shared memory.
 */
export class BackgroundSha256 {
  private readonly worker: Worker;
  private readonly busy = new Map<number, Promise<void>>();
  private readonly waiters = new Map<number, () => void>();
  private finished: ((hex: string) => void) | undefined;
  private partDone: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(ring: SharedArrayBuffer) {
    this.worker = new Worker(hashWorkerSource(), { eval: true, workerData: ring });
    this.worker.on('message', (m: HashWorkerReply) => {
      if ('digest' in m) this.finished?.(m.digest);
      else if ('part' in m) this.partDone?.resolve(m.part);
      else {
        this.busy.delete(m.slot);
        this.waiters.get(m.slot)?.();
        this.waiters.delete(m.slot);
      }
    });
    this.worker.on('error', (err) => {
      this.failure = err;
      for (const w of this.waiters.values()) w();
      this.partDone?.reject(err);
    });
  }

  private send(m: HashWorkerRequest): void {
    this.worker.postMessage(m);
  }

  /** Hands a filled slot to the worker, in file order. */
  update(slot: number, offset: number, length: number): void {
    this.busy.set(slot, new Promise<void>((resolve) => this.waiters.set(slot, resolve)));
    this.send({ slot, offset, length });
  }

  /** Waits until the worker no longer reads `slot`. */
  async release(slot: number): Promise<void> {
    await this.busy.get(slot);
    if (this.failure) throw this.failure;
  }

  /** The bytes handed over from now on are also hashed on their own, until `endPart`. */
  beginPart(): void {
    this.send({ begin: true });
  }

  /** The sha256 (hex) of the bytes since `beginPart`. */
  endPart(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<string>((resolve, reject) => {
      this.partDone = { resolve, reject };
      this.send({ end: true });
    });
  }

  /** Takes back the last part: the whole-file hash is again what it was at `beginPart`. */
  rewind(): void {
    this.send({ rewind: true });
  }

  async digest(): Promise<string> {
    await Promise.all(this.busy.values());
    if (this.failure) throw this.failure;
    return new Promise<string>((resolve) => {
      this.finished = resolve;
      this.send({ done: true });
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
