/**
 * The buffers blob bytes move through, reused from one read to the next and
 * from one response to the next. A buffer allocated per read and dropped once
 * sent costs, at these sizes, freshly mapped zeroed pages for every chunk and
 * a garbage collector that has to find it again: with 16 clients pulling a
 * 1 GiB bundle that was most of serve's CPU time, several times the cost of
 * hashing the same bytes.
 *
 * Chunks are handed out whole and come back as any view of them. The pool
 * keeps at most `keep` idle: what the busy responses use at once is kept, a
 * burst beyond it is allocated and dropped.
 */
export class ChunkPool {
  private readonly idle: ArrayBuffer[] = [];

  constructor(
    readonly chunkSize: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    const memory = this.idle.pop();
    return memory ? Buffer.from(memory) : Buffer.allocUnsafeSlow(this.chunkSize);
  }

  /** `chunk` (or a view of it) will not be read again by its holder. */
  release(chunk: Buffer): void {
    const memory = chunk.buffer;
    if (memory.byteLength === this.chunkSize && memory instanceof ArrayBuffer && this.idle.length < this.keep)
      this.idle.push(memory);
  }
}
