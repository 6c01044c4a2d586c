import { Worker } from 'node:worker_threads';

/**
 * sha256 computed on a worker thread over shared memory: the main thread reads
 * a file into a ring of slots and keeps hashing entries, while this hashes the
 * whole file on the second core. Nothing is copied; a slot is reused only after
 * the worker has released it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
const ring = Buffer.from(workerData);
parentPort.on('message', (m) => {
  if (m.done) return parentPort.postMessage({ digest: hash.digest('hex') });
  hash.update(ring.subarray(m.offset, m.offset + m.length));
  parentPort.postMessage({ slot: m.slot });
});
`;

export class BackgroundSha256 {
  private readonly worker: Worker;
  private readonly busy = new Map<number, Promise<void>>();
  private readonly waiters = new Map<number, () => void>();
  private finished: ((hex: string) => void) | undefined;
  private failure: Error | undefined;

  constructor(ring: SharedArrayBuffer) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: ring });
    this.worker.on('message', (m: { slot?: number; digest?: string }) => {
      if (m.digest !== undefined) this.finished?.(m.digest);
      else if (m.slot !== undefined) {
        this.busy.delete(m.slot);
        this.waiters.get(m.slot)?.();
        this.waiters.delete(m.slot);
      }
    });
    this.worker.on('error', (err) => {
      this.failure = err;
      for (const w of this.waiters.values()) w();
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
