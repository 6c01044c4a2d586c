import { Worker } from 'node:worker_threads';

/**
 * sha256 computed on a worker thread over shared memory: the main thread reads
 * a file into a ring of slots and keeps hashing entries, while this hashes the
 * whole file on the second core. Nothing is copied; a slot is reused only after
 * the worker has released it. A part of the file (one blob) can be hashed on its
 * own as well, and taken back: the whole-file hash returns to where it began.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = createHash('sha256');
let part;
let mark;
const ring = Buffer.from(workerData);
parentPort.on('message', (m) => {
  if (m.done) return parentPort.postMessage({ digest: hash.digest('hex') });
  if (m.begin) {
    part = createHash('sha256');
    mark = hash.copy();
    return;
  }
  if (m.end) {
    const digest = part.digest('hex');
    part = undefined;
    return parentPort.postMessage({ part: digest });
  }
  if (m.rewind) {
    hash = mark;
    return;
  }
  const bytes = ring.subarray(m.offset, m.offset + m.length);
  hash.update(bytes);
  if (part) part.update(bytes);
  parentPort.postMessage({ slot: m.slot });
});
`;

export class BackgroundSha256 {
  private readonly worker: Worker;
  private readonly busy = new Map<number, Promise<void>>();
  private readonly waiters = new Map<number, () => void>();
  private finished: ((hex: string) => void) | undefined;
  private partDone: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(ring: SharedArrayBuffer) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: ring });
    this.worker.on('message', (m: { slot?: number; digest?: string; part?: string }) => {
      if (m.digest !== undefined) this.finished?.(m.digest);
      else if (m.part !== undefined) this.partDone?.resolve(m.part);
      else if (m.slot !== undefined) {
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

  /** Hands a filled slot to the worker, in file order. */
  update(slot: number, offset: number, length: number): void {
    this.busy.set(slot, new Promise<void>((resolve) => this.waiters.set(slot, resolve)));
    this.worker.postMessage({ slot, offset, length });
  }

  /** Waits until the worker no longer reads `slot`. */
  async release(slot: number): Promise<void> {
    await this.busy.get(slot);
    if (this.failure) throw this.failure;
  }

  /** The bytes handed over from now on are also hashed on their own, until `endPart`. */
  beginPart(): void {
    this.worker.postMessage({ begin: true });
  }

  /** The sha256 (hex) of the bytes since `beginPart`. */
  endPart(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<string>((resolve, reject) => {
      this.partDone = { resolve, reject };
      this.worker.postMessage({ end: true });
    });
  }

  /** Takes back the last part: the whole-file hash is again what it was at `beginPart`. */
  rewind(): void {
    this.worker.postMessage({ rewind: true });
  }

  async digest(): Promise<string> {
    await Promise.all(this.busy.values());
    if (this.failure) throw this.failure;
    return new Promise<string>((resolve) => {
      this.finished = resolve;
      this.worker.postMessage({ done: true });
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
