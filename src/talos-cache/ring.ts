import { Worker } from 'node:worker_threads';
import { CONTROL, ringWorkerSource, type CheckUnit, type RingWorkerData } from './ring-worker.js';

/**
 * A fixed ring of shared memory slots the bundle's bytes are read straight
 * into, and two threads hashing them in place (see ring-worker.ts): one the
 * layer's digest, one every blob against its own digest. Nothing is copied
 * for a hash and memory stays the ring's size however large the layer.
 *
 * The threads speak through counters in shared memory, not messages: this
 * side publishes filled slots in order, each worker counts the slots it is
 * done with, and each side waits on the other with Atomics. Only the results
 * come back as messages.
 */

/** How long this thread waits on a worker before looking whether it died. */
const POLL_MS = 250;

/** Atomics.waitAsync (Node 16+), which the ES2022 library typings predate. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number, ms: number): { async: boolean; value: unknown };
  }
).waitAsync;

/** The blob check found bytes that do not match: the unit's range, or (`whole`) the blob in parts it ends. */
export class RingCheckFailed extends Error {
  constructor(
    readonly unit: number,
    readonly whole: boolean,
  ) {
    super(`unit ${unit} does not match its digest`);
  }
}

interface Hasher {
  worker: Worker;
  counter: number;
  result: Promise<string>;
}

export class SharedRing {
  readonly slots: Buffer[];
  private readonly control: Int32Array;
  private readonly hashers: Hasher[];
  private published = 0;
  private failure: Error | undefined;

  constructor(count: number, slotSize: number, units: CheckUnit[]) {
    const data = new SharedArrayBuffer(count * slotSize);
    const control = new SharedArrayBuffer((CONTROL.lengths + count) * 4);
    this.control = new Int32Array(control);
    this.slots = Array.from({ length: count }, (_, i) => Buffer.from(data, i * slotSize, slotSize));
    const base = { control, data, slots: count, slotSize };
    this.hashers = [
      this.start({ ...base, role: 'layer', counter: CONTROL.layer }),
      this.start({ ...base, role: 'blobs', counter: CONTROL.blobs, units }),
    ];
  }

  /** Slot `seq % count` holds the layer's next `length` bytes: the workers may hash them. */
  publish(seq: number, length: number): void {
    if (seq !== this.published) throw new Error(`slot ${seq} published out of order`);
    Atomics.store(this.control, CONTROL.lengths + (seq % this.slots.length), length);
    Atomics.store(this.control, CONTROL.published, ++this.published);
    this.wake();
  }

  /** Resolves once both workers are done with the first `n` slots published. */
  async hashed(n: number): Promise<void> {
    for (const h of this.hashers) {
      for (;;) {
        this.throwIfFailed();
        const done = Atomics.load(this.control, h.counter);
        if (done >= n) break;
        const wait = waitAsync(this.control, h.counter, done, POLL_MS);
        if (wait.async) await wait.value;
      }
    }
  }

  /** Every slot is published: the layer's digest, once every blob matched. */
  async finish(): Promise<string> {
    Atomics.store(this.control, CONTROL.end, 1);
    this.wake();
    try {
      const [digest, blobs] = await Promise.all(this.hashers.map((h) => h.result));
      this.throwIfFailed();
      if (blobs !== 'ok') throw new Error('the blob hashing thread gave no result');
      return `sha256:${digest}`;
    } finally {
      await this.stop();
    }
  }

  /** Stops the workers without a result (after a failure). */
  async abort(): Promise<void> {
    Atomics.store(this.control, CONTROL.end, 2);
    this.wake();
    await this.stop();
  }

  private start(workerData: RingWorkerData): Hasher {
    const worker = new Worker(ringWorkerSource(), { eval: true, workerData });
    const result = new Promise<string>((resolve, reject) => {
      worker.once('message', (m: string) => resolve(m));
      worker.once('error', (err) => reject((this.failure ??= err)));
      // After a result this is a no-op; before one, the thread died without saying why.
      worker.once('exit', () => reject(new Error('a hashing thread stopped')));
    });
    // Not awaited until finish(): a failure must not go unhandled meanwhile.
    result.catch(() => {});
    return { worker, counter: workerData.counter, result };
  }

  private throwIfFailed(): void {
    const failed = Atomics.load(this.control, CONTROL.failed);
    if (failed > 0) throw new RingCheckFailed((failed >> 1) - 1, (failed & 1) === 1);
    if (this.failure) throw this.failure;
  }

  private async stop(): Promise<void> {
    await Promise.all(this.hashers.map((h) => h.worker.terminate()));
  }

  /** A futex wake costs a system call: made only when a worker sleeps (each says so before it does). */
  private wake(): void {
    Atomics.add(this.control, CONTROL.signal, 1);
    const sleeping = this.hashers.some((h) => Atomics.load(this.control, h.counter + 1) === 1);
    if (sleeping) Atomics.notify(this.control, CONTROL.signal);
  }
}
