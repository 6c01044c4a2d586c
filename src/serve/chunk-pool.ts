/**
 * The buffers blob bytes move through, reused from one read to the next and
 * from one response to the next. A buffer allocated per read and dropped once
 * sent costs, at these sizes, freshly mapped zeroed pages for every chunk and
 * a garbage collector that has to find it again: with 16 clients pulling a
 * 1 GiB bundle that was most of serve's CPU time, several times the cost of
 * hashing the same bytes.
 *
 * The pool owns at most `capacity` chunks. When all are busy, a reader waits
 * for one to come back, and only after `patienceMs` is it given a chunk of its
 * own, dropped once used. Waiting first matters for memory, not speed: large
 * buffers allocated in a burst (200 clients that each leave after a few bytes)
 * and freed out of order fragment the allocator, and the process keeps tens
 * of MiB it will not use again; a chunk comes back within milliseconds of its
 * client reading or leaving. The patience bounds what clients that stop
 * reading can cost the others while they hold chunks until the idle timeout
 * cuts them: never a wait, only a slower pace.
 */
export class ChunkPool {
  private readonly idle: ArrayBuffer[] = [];
  private readonly owned = new WeakSet<ArrayBuffer>();
  private ownedCount = 0;
  private readonly waiting: Array<(memory: ArrayBuffer) => void> = [];

  constructor(
    readonly chunkSize: number,
    private readonly capacity: number,
    private readonly patienceMs: number,
  ) {}

  async take(): Promise<Buffer> {
    const memory = this.idle.pop() ?? this.allocateOwned() ?? (await this.waitOrAllocate());
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
    const memory = uninitialized(this.chunkSize);
    this.owned.add(memory);
    this.ownedCount++;
    return memory;
  }

  private waitOrAllocate(): Promise<ArrayBuffer> {
    return new Promise((resolve) => {
      const handOver = (memory: ArrayBuffer) => {
        clearTimeout(timer);
        resolve(memory);
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(handOver), 1);
        resolve(uninitialized(this.chunkSize));
      }, this.patienceMs);
      this.waiting.push(handOver);
    });
  }
}

/** Every byte is written by a read before it is sent: zeroing first would be wasted work. */
function uninitialized(size: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
}
