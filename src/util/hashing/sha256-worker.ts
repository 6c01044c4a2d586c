/**
 * The hashing thread behind BackgroundSha256 (background-sha256.ts). It runs
 * from this function's own source (see worker-source.ts), so it must be
 * self-contained: everything it needs comes through `load`.
 */

import { workerSource, type WorkerRequire } from './worker-source.js';

/** What the main thread sends: a filled slot, or a control message. */
export type HashWorkerRequest =
  | { slot: number; offset: number; length: number }
  | { begin: true }
  | { end: true }
  | { rewind: true }
  | { done: true };

/** What the worker answers: a released slot, a part's digest, the whole digest. */
export type HashWorkerReply = { slot: number } | { part: string } | { digest: string };

export function hashWorkerMain(load: WorkerRequire): void {
  const { parentPort, workerData } = load('node:worker_threads') as typeof import('node:worker_threads');
  const { createHash } = load('node:crypto') as typeof import('node:crypto');
  if (!parentPort) return;
  const port = parentPort;
  const ring = Buffer.from(workerData as SharedArrayBuffer);
  let whole = createHash('sha256');
  // A blob hashed on its own, and the whole-file state at its start, to take it back.
  let part: ReturnType<typeof createHash> | undefined;
  let mark: ReturnType<typeof createHash> | undefined;
  const reply = (m: HashWorkerReply) => port.postMessage(m);
  port.on('message', (m: HashWorkerRequest) => {
    if ('done' in m) return reply({ digest: whole.digest('hex') });
    if ('begin' in m) {
      part = createHash('sha256');
      mark = whole.copy();
      return;
    }
    if ('end' in m) {
      const digest = part?.digest('hex') ?? '';
      part = undefined;
      return reply({ part: digest });
    }
    if ('rewind' in m) {
      if (mark) whole = mark;
      return;
    }
    const bytes = ring.subarray(m.offset, m.offset + m.length);
    whole.update(bytes);
    part?.update(bytes);
    reply({ slot: m.slot });
  });
}

/** The worker's source for `new Worker(source, { eval: true })`. */
export function hashWorkerSource(): string {
  return workerSource(hashWorkerMain);
}
