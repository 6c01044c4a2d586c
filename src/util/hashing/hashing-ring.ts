import { open, type FileHandle } from 'node:fs/promises';
import { BackgroundSha256 } from './background-sha256.js';

const SLOT = 1024 * 1024;
const SLOTS = 4;
/** Dirty pages pushed to disk as the file grows, so the closing fsync has little left to wait for. */
const SYNC_EVERY = 256 * 1024 * 1024;

/**
 * Writes a file sequentially through a ring of shared slots: file ranges are
 * read straight into a slot, a worker thread hashes the slot while the thread
 * pool writes it out, and the main thread only moves slot numbers around. A
 * slot is refilled once both its hash and its write are done. Writes go one at
 * a time: concurrent writes to one file only queue on its inode lock, spinning.
 * Without a file (`inPlace()`), the same ring hashes bytes already in place.
 */
export class HashingRing {
  private readonly view: Buffer;
  private readonly hasher: BackgroundSha256;
  private readonly writes: Array<Promise<void> | undefined> = new Array(SLOTS);
  private slot = 0;
  private fill = 0;
  private position = 0;
  private syncedAt = 0;
  private syncing: Promise<void> | undefined;
  private failure: unknown;

  private lastWrite: Promise<void> = Promise.resolve();

  private constructor(
    private readonly fh: FileHandle | undefined,
    ring: SharedArrayBuffer,
    private readonly onBytes?: (n: number) => void,
  ) {
    this.view = Buffer.from(ring);
    this.hasher = new BackgroundSha256(ring);
  }

  static async toFile(path: string, onBytes?: (n: number) => void): Promise<HashingRing> {
    const fh = await open(path, 'w');
    return new HashingRing(fh, new SharedArrayBuffer(SLOT * SLOTS), onBytes);
  }

  /** The sha256 of a sequence of bytes and file ranges, nothing written. */
  static inPlace(onBytes?: (n: number) => void): HashingRing {
    return new HashingRing(undefined, new SharedArrayBuffer(SLOT * SLOTS), onBytes);
  }

  /** Bytes written so far (handed to the file, not necessarily on disk yet). */
  get bytes(): number {
    return this.position + this.fill;
  }

  /** Appends bytes already in memory (headers, padding, small documents). */
  async append(buf: Buffer): Promise<void> {
    let at = 0;
    while (at < buf.length) {
      const n = Math.min(buf.length - at, SLOT - this.fill);
      buf.copy(this.view, this.slot * SLOT + this.fill, at, at + n);
      this.fill += n;
      at += n;
      this.onBytes?.(n);
      if (this.fill === SLOT) await this.flush();
    }
  }

  /** Appends `size` bytes of `file` from `offset`; a file shorter than that is an error. */
  async appendFile(file: string, offset: number, size: number): Promise<void> {
    const src = await open(file, 'r');
    try {
      await this.appendRange(src, file, offset, size);
    } finally {
      await src.close();
    }
  }

  /**
   * Appends `size` bytes from `offset` of the open file `src` (called `name` in
   * errors): for a caller reading many ranges of one file, one open for all.
   */
  async appendRange(src: FileHandle, name: string, offset: number, size: number): Promise<void> {
    let left = size;
    while (left > 0) {
      const want = Math.min(left, SLOT - this.fill);
      const { bytesRead } = await src.read(this.view, this.slot * SLOT + this.fill, want, offset + size - left);
      if (bytesRead === 0)
        throw new Error(
          `${name} changed while being archived (expected ${size} bytes from offset ${offset}, it ends ${left} bytes early)`,
        );
      this.fill += bytesRead;
      left -= bytesRead;
      this.onBytes?.(bytesRead);
      if (this.fill === SLOT) await this.flush();
    }
  }

  /**
   * Appends a range like `appendRange` and returns the sha256 of just those
   * bytes: how a range written by someone else is checked on its way through.
   */
  async appendRangeChecked(src: FileHandle, name: string, offset: number, size: number): Promise<string> {
    if (this.fill > 0) await this.flush();
    this.hasher.beginPart();
    await this.appendRange(src, name, offset, size);
    if (this.fill > 0) await this.flush();
    return `sha256:${await this.hasher.endPart()}`;
  }

  /** Takes back the range of the last `appendRangeChecked` (hashing only: nothing was written). */
  unappend(size: number): void {
    if (this.fh) throw new Error('bytes already written cannot be taken back');
    this.hasher.rewind();
    this.position -= size;
    this.onBytes?.(-size);
  }

  /** Writes what is left, waits for every write, and returns the file's sha256; the file is on disk. */
  async finish(): Promise<string> {
    if (this.fill > 0) await this.flush();
    await Promise.all(this.writes);
    await this.syncing;
    if (this.failure) throw this.failure;
    const digest = await this.hasher.digest();
    await this.fh?.sync();
    await this.close();
    return digest;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.writes, this.syncing]);
    await this.fh?.close().catch(() => undefined);
    await this.hasher.terminate();
  }

  /** Hands the current slot to the hasher and the writer, then waits until the next slot is free. */
  private async flush(): Promise<void> {
    const slot = this.slot;
    const length = this.fill;
    this.hasher.update(slot, slot * SLOT, length);
    const fh = this.fh;
    if (fh) {
      const position = this.position;
      this.lastWrite = this.lastWrite
        .then(() => this.writeAll(fh, slot * SLOT, length, position))
        .catch((err: unknown) => {
          this.failure ??= err;
        });
      this.writes[slot] = this.lastWrite;
    }
    this.position += length;
    this.fill = 0;
    this.slot = (slot + 1) % SLOTS;
    if (fh && this.position - this.syncedAt >= SYNC_EVERY && !this.syncing) {
      this.syncedAt = this.position;
      this.syncing = fh.datasync().then(
        () => void (this.syncing = undefined),
        (err: unknown) => void (this.failure ??= err),
      );
    }
    await this.writes[this.slot];
    await this.hasher.release(this.slot);
    if (this.failure) throw this.failure;
  }

  private async writeAll(fh: FileHandle, at: number, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await fh.write(this.view, at + done, length - done, position + done);
      done += bytesWritten;
    }
  }
}
