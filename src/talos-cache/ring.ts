import { SlotRing } from '../util/hashing/slot-ring.js';
import { digestWorkerSource } from '../util/hashing/slot-worker.js';
import { blobCheckSource, type CheckUnit } from './ring-worker.js';

/**
 * The ring the `oci` layer's bytes are read straight into (util/hashing's
 * SlotRing), with two threads hashing them in place: one the layer's digest,
 * one every blob against its own digest (ring-worker.ts). Nothing is copied
 * for a hash and memory stays the ring's size however large the layer.
 */

/** The blob check found bytes that do not match: the unit's range, or (`whole`) the blob in parts it ends. */
export class RingCheckFailed extends Error {
  constructor(
    readonly unit: number,
    readonly whole: boolean,
  ) {
    super(`unit ${unit} does not match its digest`);
  }
}

export class SharedRing {
  private readonly ring: SlotRing;

  constructor(count: number, slotSize: number, units: CheckUnit[]) {
    this.ring = new SlotRing(
      count,
      slotSize,
      [{ source: digestWorkerSource() }, { source: blobCheckSource(), data: { units } }],
      // The unit, and whether its range or its whole blob failed, in one word (see ring-worker.ts).
      (code) => new RingCheckFailed((code >> 1) - 1, (code & 1) === 1),
    );
  }

  get slots(): Buffer[] {
    return this.ring.slots;
  }

  /** Slot `seq % count` holds the layer's next `length` bytes: the threads may hash them. */
  publish(seq: number, length: number): void {
    this.ring.publish(seq, length);
  }

  /** Resolves once both threads are done with the first `n` slots published. */
  hashed(n: number): Promise<void> {
    return this.ring.hashed(n);
  }

  /** Every slot is published: the layer's digest, once every blob matched. */
  async finish(): Promise<string> {
    const [digest, blobs] = await this.ring.finish();
    if (blobs !== 'ok') throw new Error('the blob hashing thread gave no result');
    return `sha256:${digest}`;
  }

  /** Stops the threads without a result (after a failure). */
  abort(): Promise<void> {
    return this.ring.abort();
  }
}
