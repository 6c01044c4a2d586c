import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SlotRing } from '../../src/util/hashing/slot-ring.js';
import {
  consumeSlots,
  digestWorkerSource,
  refuseSlots,
  type SlotWorkerData,
} from '../../src/util/hashing/slot-worker.js';
import { workerSource, type WorkerRequire } from '../../src/util/hashing/worker-source.js';

const SLOTS = 3;
const SLOT_SIZE = 64 * 1024;

/** Publishes `data` through `ring` slot by slot, reusing a slot only once every thread is done with it. */
async function pass(ring: SlotRing, data: Buffer): Promise<void> {
  let seq = 0;
  for (let at = 0; at < data.length; at += SLOT_SIZE, seq++) {
    if (seq >= SLOTS) await ring.hashed(seq - SLOTS + 1);
    const length = data.copy(ring.slots[seq % SLOTS]!, 0, at, at + SLOT_SIZE);
    ring.publish(seq, length);
  }
  await ring.hashed(seq);
}

/** A thread that refuses the slot numbered `data.at` (counting from 1) with code 7. */
function refuseAtMain(load: WorkerRequire, consume: typeof consumeSlots, refuse: typeof refuseSlots): void {
  const { parentPort, workerData } = load('node:worker_threads') as typeof import('node:worker_threads');
  const wd = workerData as SlotWorkerData & { at: number };
  let seen = 0;
  const outcome = consume(wd, () => ++seen < wd.at);
  if (outcome === 'refused') refuse(wd, 7, parentPort!);
  else if (outcome === 'end') parentPort?.postMessage('ok');
}

describe('slot ring', () => {
  it('gives the sha256 of every byte published, across many turns of the ring and a short last slot', async () => {
    const data = randomBytes(10 * SLOT_SIZE + 123);
    const ring = new SlotRing(SLOTS, SLOT_SIZE, [{ source: digestWorkerSource() }], () => new Error('refused'));
    await pass(ring, data);
    expect(await ring.finish()).toEqual([createHash('sha256').update(data).digest('hex')]);
  });

  it('gives every thread the same bytes, and each its own result', async () => {
    const data = randomBytes(5 * SLOT_SIZE);
    const threads = [{ source: digestWorkerSource() }, { source: digestWorkerSource() }];
    const ring = new SlotRing(SLOTS, SLOT_SIZE, threads, () => new Error('refused'));
    await pass(ring, data);
    const digest = createHash('sha256').update(data).digest('hex');
    expect(await ring.finish()).toEqual([digest, digest]);
  });

  it('throws what the user makes of the code a thread refused a slot with', async () => {
    const source = workerSource(refuseAtMain, consumeSlots, refuseSlots);
    const ring = new SlotRing(SLOTS, SLOT_SIZE, [{ source, data: { at: 4 } }], (code) => new Error(`code ${code}`));
    try {
      await expect(pass(ring, randomBytes(8 * SLOT_SIZE))).rejects.toThrow('code 7');
    } finally {
      await ring.abort();
    }
  });
});
