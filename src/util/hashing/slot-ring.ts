import { Worker } from 'node:worker_threads';
import { RING_WORDS, type SlotWorkerData } from './slot-worker.js';

/**
 * A fixed ring of shared memory slots and the threads that hash every slot in
 * place: the bytes are read straight into a slot once, each thread reads them
 * there, and memory stays the ring's size however many bytes pass through.
 *
 * The threads speak through counters in shared memory, not messages: this
 * side publishes filled slots in order, each thread counts the slots it is
 * done with, and each side waits on the other with Atomics; a slot is refilled
 * only once every thread counted it. At slots of a few MiB a message per slot
 * and thread would cost more than the wait. Only results come back as
 * messages. The threads' side is slot-worker.ts.
 */

/** How long this thread waits on a worker before looking whether it died. */
const POLL_MS = 250;

/** Atomics.waitAsync (Node 16+), which the ES2022 library typings predate. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number, ms: number): { async: boolean; value: unknown };
  }
).waitAsync;

/** One hashing thread: its source (see `workerSource`), and what it gets beside the ring. */
export interface SlotThread {
  source: string;
  data?: object;
}

interface Running {
  worker: Worker;
  counter: number;
  result: Promise<string>;
}

export class SlotRing {
  readonly slots: Buffer[];
  private readonly control: Int32Array;
  private readonly threads: Running[];
  private readonly lengths: number;
  private published = 0;
  private failure: Error | undefined;

  /** `refused` turns the code a thread stopped the ring with into the error to throw. */
  constructor(
    count: number,
    slotSize: number,
    threads: SlotThread[],
    private readonly refused: (code: number) => Error,
  ) {
    this.lengths = RING_WORDS.threads + 2 * threads.length;
    const data = new SharedArrayBuffer(count * slotSize);
    const control = new SharedArrayBuffer((this.lengths + count) * 4);
    this.control = new Int32Array(control);
    this.slots = Array.from({ length: count }, (_, i) => Buffer.from(data, i * slotSize, slotSize));
    this.threads = threads.map((t, i) =>
      this.start(t, {
        control,
        data,
        slots: count,
        slotSize,
        counter: RING_WORDS.threads + 2 * i,
        lengths: this.lengths,
        words: RING_WORDS,
      }),
    );
  }

  /** Slot `seq % count` holds the next `length` bytes: the threads may hash them. */
  publish(seq: number, length: number): void {
    if (seq !== this.published) throw new Error(`slot ${seq} published out of order`);
    Atomics.store(this.control, this.lengths + (seq % this.slots.length), length);
    Atomics.store(this.control, RING_WORDS.published, ++this.published);
    this.wake();
  }

  /** Resolves once every thread is done with the first `n` slots published. */
  async hashed(n: number): Promise<void> {
    for (const t of this.threads) {
      for (;;) {
        this.throwIfFailed();
        const done = Atomics.load(this.control, t.counter);
        if (done >= n) break;
        const wait = waitAsync(this.control, t.counter, done, POLL_MS);
        if (wait.async) await wait.value;
      }
    }
  }

  /** Every slot is published: each thread's result, in the order the threads were given. */
  async finish(): Promise<string[]> {
    Atomics.store(this.control, RING_WORDS.end, 1);
    this.wake();
    try {
      const results = await Promise.all(this.threads.map((t) => t.result));
      this.throwIfFailed();
      return results;
    } finally {
      await this.stop();
    }
  }

  /** Stops the threads without a result (after a failure). */
  async abort(): Promise<void> {
    Atomics.store(this.control, RING_WORDS.end, 2);
    this.wake();
    await this.stop();
  }

  private start(thread: SlotThread, ring: SlotWorkerData): Running {
    const worker = new Worker(thread.source, { eval: true, workerData: { ...thread.data, ...ring } });
    const result = new Promise<string>((resolve, reject) => {
      worker.once('message', (m: string) => resolve(m));
      worker.once('error', (err) => reject((this.failure ??= err)));
      // After a result this is a no-op; before one, the thread died without saying why.
      worker.once('exit', () => reject(new Error('a hashing thread stopped')));
    });
    // Not awaited until finish(): a failure must not go unhandled meanwhile.
    result.catch(() => {});
    return { worker, counter: ring.counter, result };
  }

  private throwIfFailed(): void {
    const code = Atomics.load(this.control, RING_WORDS.failed);
    if (code > 0) throw this.refused(code);
    if (this.failure) throw this.failure;
  }

  private async stop(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  /** A futex wake costs a system call: made only when a thread sleeps (each says so before it does). */
  private wake(): void {
    Atomics.add(this.control, RING_WORDS.signal, 1);
    const sleeping = this.threads.some((t) => Atomics.load(this.control, t.counter + 1) === 1);
    if (sleeping) Atomics.notify(this.control, RING_WORDS.signal);
  }
}
