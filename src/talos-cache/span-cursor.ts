import type { BlobSpan } from './blob-check.js';

/**
 * The layer as a walk over its pieces, cut to fit the room left in a slot:
 * bytes held in memory (tar headers, padding, small documents), or a stretch
 * of a bundle file to read.
 */

export interface RangeRead {
  path: string;
  /** Offset in the bundle file. */
  position: number;
  length: number;
  /** The blob it belongs to, to name when the file ends early. */
  digest: string;
}

export type Piece = Buffer | RangeRead;

export class SpanCursor {
  private readonly source: Iterator<Buffer | BlobSpan>;
  private current: Buffer | BlobSpan | undefined;
  /** In the current piece: the range, and how far into it (or into the bytes). */
  private range = 0;
  private offset = 0;
  done = false;

  constructor(pieces: Iterable<Buffer | BlobSpan>) {
    this.source = pieces[Symbol.iterator]();
    this.advance();
  }

  /** The next piece, at most `room` bytes long. */
  next(room: number): Piece | undefined {
    const cur = this.current;
    if (!cur) return undefined;
    if (Buffer.isBuffer(cur)) {
      const bytes = cur.subarray(this.offset, this.offset + room);
      this.offset += bytes.length;
      if (this.offset >= cur.length) this.advance();
      return bytes;
    }
    const r = cur.ranges[this.range]!;
    const length = Math.min(room, r.size - this.offset);
    const piece = { path: r.path, position: r.offset + this.offset, length, digest: cur.digest };
    this.offset += length;
    if (this.offset >= r.size) {
      this.offset = 0;
      if (++this.range >= cur.ranges.length) this.advance();
    }
    return piece;
  }

  private advance(): void {
    this.offset = 0;
    this.range = 0;
    for (;;) {
      const n = this.source.next();
      if (n.done) {
        this.current = undefined;
        this.done = true;
        return;
      }
      const v = n.value;
      if (Buffer.isBuffer(v) ? v.length === 0 : v.size === 0) continue;
      this.current = v;
      return;
    }
  }
}
