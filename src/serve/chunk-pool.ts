/**
 * The buffers blob bytes move through, reused from one read to the next and
 * from one response to the next. A buffer allocated per read and dropped once
 * sent costs, at these sizes, freshly mapped zeroed pages for every chunk and
 * a garbage collector that has to find it again: with 16 clients pulling a
 * 1 GiB bundle that was most of serve's CPU time, several times the cost of
 * hashing the same bytes.
 *
 * The pool owns at most `capacity` chunks and never allocates beyond them:
 * when all are busy, a reader waits for the next one released, first come
 * first served. A chunk comes back as soon as its write reaches the kernel or
 * its client leaves, so waiting is short; and memory stays at the pool's size
 * whatever the clients do. Allocating extra chunks in a burst instead (200
 * clients that each leave after a few bytes) fragmented the allocator, and the
 * process kept tens of MiB it would not use again. A client that stops reading
 * holds at most the chunk being written to it until the idle timeout cuts it.
 */
export class ChunkPool {
  private readonly idle: ArrayBuffer[] = [];
  private readonly owned = new WeakSet<ArrayBuffer>();
  private ownedCount = 0;
  private readonly waiting: Array<(memory: ArrayBuffer) => void> = [];

  constructor(
    readonly chunkSize: number,
    private readonly capacity: number,
  ) {}

  async take(): Promise<Buffer> {
    const memory = this.idle.pop() ?? this.allocateOwned() ?? (await this.nextReleased());
    return Buffer.from(memory);
  }

  /** `chunk` (or a view of it) will not be read again by its holder. */
  release(chunk: Buffer): void {
    const memory = chunk.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.owned.has(memory)) return;
    const next = this.waiting.shift();
    if (next) next(memory);
    else this.idle.push(memory);
  }

  private allocateOwned(): ArrayBuffer | undefined {
    if (this.ownedCount >= this.capacity) return undefined;
    // Every byte is written by a read before it is sent: zeroing first would be wasted work.
    const memory = Buffer.allocUnsafeSlow(this.chunkSize).buffer as ArrayBuffer;
    this.owned.add(memory);
    this.ownedCount++;
    return memory;
  }

  private nextReleased(): Promise<ArrayBuffer> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}
