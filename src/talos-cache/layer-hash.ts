import { Worker } from 'node:worker_threads';

/**
 * sha256 of the layer tar on a second thread. The configs and layers are
 * already hashed on the main thread against their own digests as they are
 * read; the layer's digest is a second hash over the same bytes, so it runs
 * beside the first instead of after it. Chunks are copied, once written, into
 * a fixed ring of shared memory the worker hashes from, in order: memory stays
 * the ring's size however large the layer, and nothing waits for a garbage
 * collection in the worker.
 *
 * The worker's code is a plain string, so it runs the same from the compiled
 * files, the test runner and a bundled executable.
 */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const ring = new Uint8Array(workerData);
const hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'end') parentPort.postMessage({ digest: hash.digest('hex') });
  else {
    hash.update(ring.subarray(m.offset, m.offset + m.length));
    parentPort.postMessage({ done: m.length + m.skip });
  }
});
`;

const RING = 8 * 1024 * 1024;
/** Largest piece copied at once, so a piece always fits in the free part of the ring. */
const PIECE = RING / 4;

export class LayerHasher {
  private readonly ring = new SharedArrayBuffer(RING);
  private readonly view = Buffer.from(this.ring);
  private readonly worker = new Worker(SOURCE, { eval: true, workerData: this.ring });
  private readonly result: Promise<string>;
  /** Next write position in the ring, and bytes handed over and not hashed yet. */
  private head = 0;
  private queued = 0;
  private freed: (() => void) | undefined;
  private failure: Error | undefined;

  constructor() {
    this.result = new Promise((resolve, reject) => {
      this.worker.on('message', (m: { digest: string } | { done: number }) => {
        if ('digest' in m) resolve(`sha256:${m.digest}`);
        else {
          this.queued -= m.done;
          this.freed?.();
        }
      });
      this.worker.once('error', (err) => {
        this.failure = err;
        this.freed?.();
        reject(err);
      });
    });
    // Not awaited until digest(): a failure must not go unhandled meanwhile.
    this.result.catch(() => {});
  }

  /** Hashes `chunk` (copied: the caller may reuse it once this resolves). */
  async update(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; at += PIECE) await this.put(chunk.subarray(at, at + PIECE));
  }

  private async put(piece: Buffer): Promise<void> {
    if (this.head === RING) this.head = 0;
    // A piece never wraps: it starts over at the ring's start when it would not fit before its end.
    const wasted = this.head + piece.length > RING ? RING - this.head : 0;
    while (this.queued + wasted + piece.length > RING && !this.failure)
      await new Promise<void>((resolve) => (this.freed = resolve));
    this.freed = undefined;
    if (this.failure) throw this.failure;
    // The skipped end of the ring counts as queued until the worker has passed it: the
    // bytes queued are always the ones just behind `head`, so free space is contiguous after it.
    if (wasted > 0) this.head = 0;
    piece.copy(this.view, this.head);
    this.queued += wasted + piece.length;
    this.worker.postMessage({ offset: this.head, length: piece.length, skip: wasted });
    this.head += piece.length;
  }

  async digest(): Promise<string> {
    this.worker.postMessage('end');
    try {
      return await this.result;
    } finally {
      await this.worker.terminate();
    }
  }

  /** Stops the worker without a result (after a failure). */
  async abort(): Promise<void> {
    await this.worker.terminate();
  }
}
