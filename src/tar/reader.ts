import { open, type FileHandle } from 'node:fs/promises';
import { Header } from 'tar';
import { BackgroundSha256 } from '../util/hashing/background-sha256.js';
import { BLOCK } from './entries.js';
import { printable } from '../util/text.js';

/**
 * Header types that change how the next entry is read: the bundle writer never
 * writes one (every name fits the 100-byte field, a size past 8 GiB is
 * base-256 in the header itself), so one is refused at once, before a chain of
 * them can cost time, and no reader is handed a name or size other tar readers
 * would see differently.
 */
const EXTENDED_HEADERS: Partial<Record<string, string>> = {
  ExtendedHeader: 'a PAX extended header',
  OldExtendedHeader: 'a PAX extended header',
  GlobalExtendedHeader: 'a PAX global extended header',
  NextFileHasLongPath: 'a GNU long-name header',
  OldGnuLongPath: 'a GNU long-name header',
  NextFileHasLongLinkpath: 'a GNU long-link header',
  SparseFile: 'a GNU sparse file',
  ContinuationFile: 'a GNU multi-volume continuation',
  TapeVolumeHeader: 'a tape volume header',
  GNUDumpDir: 'a GNU dump directory',
  SolarisACL: 'a Solaris ACL',
  Inode: 'an inode-only entry',
};
const SLOT = 4 << 20;
const SLOTS = 4;
/**
 * The first read after a seek: a header and, for a small entry, its data. Reads
 * grow from there (x4 each) back to a whole slot while the reading goes on in
 * order. Reading whole slots after every seek read most of a bundle of large
 * layers just to find the next header, and again for the read-ahead.
 */
const READ_AFTER_SEEK = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/**
 * Zeros allowed after the end-of-archive marker: GNU tar pads to its record
 * size (10 KiB by default); anything more, or anything not zero, is data
 * hidden from readers that stop at the marker.
 */
const MAX_TRAILING_ZEROS = 1 << 20;

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

export interface TarEntry {
  path: string;
  /** node-tar's type names: File, OldFile, Directory, SymbolicLink, Link, … */
  type: string;
  size: number;
  /** Offset of the entry's data in the file. */
  offset: number;
}

/**
 * A sequential tar reader built for bundles that are many GB on slow media:
 *
 * - It reads with positioned reads into a small ring of reused buffers. Fresh
 *   buffers per chunk (what a Readable stream does) cost more in page faults
 *   than the hashing itself.
 * - Entry data is handed out as borrowed views into that ring, valid until the
 *   consumer asks for the next chunk; a consumer that keeps bytes copies them.
 * - Data nobody reads is skipped by seeking, not read: importing into a registry
 *   that already holds most blobs reads only what it uploads.
 * - With `wholeFileHash`, every byte is also hashed on another thread, reading
 *   the same shared memory, for the sidecar check in the same single read.
 *
 * Headers are decoded by node-tar's Header class.
 */
export class TarReader {
  /** Shared with the hashing thread only when the whole file is hashed. */
  private readonly ring: SharedArrayBuffer | undefined;
  /** Allocated on first use: reading only the metadata touches one slot. */
  private readonly slots: Array<Buffer | undefined> = new Array<Buffer | undefined>(SLOTS);
  private slot = 0;
  /** The current window: file bytes [winStart, winStart + win.length). */
  private win: Buffer = Buffer.alloc(0);
  private winStart = 0;
  /** Next file offset to read from disk. */
  private filePos = 0;
  /** Logical position of the parser. */
  private pos = 0;
  private ahead: Promise<Buffer> | undefined;
  private readonly hasher: BackgroundSha256 | undefined;
  /** Whether any byte was skipped: the whole-file hash is then incomplete. */
  private skipped = false;
  /** Size of the next read: small right after a seek, then growing to a slot. */
  private nextRead = SLOT;
  private read = 0;
  readonly size: number;

  private constructor(
    private readonly fh: FileHandle,
    size: number,
    wholeFileHash: boolean,
  ) {
    this.size = size;
    this.ring = wholeFileHash ? new SharedArrayBuffer(SLOT * SLOTS) : undefined;
    this.hasher = this.ring ? new BackgroundSha256(this.ring) : undefined;
  }

  static async open(path: string, opts: { wholeFileHash?: boolean } = {}): Promise<TarReader> {
    const fh = await open(path, 'r');
    const st = await fh.stat();
    return new TarReader(fh, st.size, opts.wholeFileHash ?? false);
  }

  /** Bytes read from the file so far: what skipping saved is what this leaves out. */
  get bytesRead(): number {
    return this.read;
  }

  /** Bytes consumed from the file so far (for progress). */
  get position(): number {
    return this.pos;
  }

  /**
   * Iterates entries. Between two steps the consumer may read the current
   * entry's data with `data()`; whatever it leaves is skipped. Returns at the
   * end-of-archive marker; throws TarFormatError on damage or truncation.
   */
  async *entries(): AsyncGenerator<TarEntry> {
    for (;;) {
      const header = await this.take(BLOCK);
      if (header.length < BLOCK) {
        throw new TarFormatError(
          this.pos === 0 && header.length === 0
            ? 'the file is empty'
            : 'the archive is truncated (it ends without the end-of-archive marker)',
        );
      }
      let h: Header;
      try {
        h = new Header(Buffer.from(header));
      } catch (err) {
        // Numeric fields out of range or badly encoded: damage or a crafted header.
        throw new TarFormatError(`invalid tar header at offset ${this.pos - BLOCK} (${(err as Error).message})`);
      }
      if (h.nullBlock) return this.endOfArchive(header);
      if (!h.cksumValid)
        throw new TarFormatError(
          `not a valid tar archive (header checksum mismatch at offset ${this.pos - BLOCK}): damaged, or not a bundle`,
        );
      const size = h.size ?? 0;
      if (!Number.isSafeInteger(size) || size < 0)
        throw new TarFormatError(`invalid entry size at offset ${this.pos - BLOCK}`);
      const type = h.type;
      const extended = EXTENDED_HEADERS[type];
      if (extended)
        throw new TarFormatError(
          `entry "${printable(h.path ?? '', 120)}" at offset ${this.pos - BLOCK} is ${extended}, which a bundle never holds (names and sizes fit the entry's own header); the archive was altered`,
        );
      const entry: TarEntry = { path: h.path ?? '', type, size, offset: this.pos };
      const end = entry.offset + size + pad(size);
      yield entry;
      if (end > this.size)
        throw new TarFormatError(
          `the archive is truncated (entry "${entry.path}" needs ${end - this.size} more bytes)`,
        );
      await this.skipTo(end);
    }
  }

  /**
   * The end-of-archive marker is two zero blocks, and nothing but zero padding
   * follows. A lone zero block followed by more headers is refused: GNU tar
   * stops there and other readers go on, so entries behind it would be seen by
   * some readers and not by others (a smuggled blob).
   */
  private async endOfArchive(first: Buffer): Promise<void> {
    const at = this.pos - BLOCK;
    if (!first.equals(ZERO_BLOCK))
      throw new TarFormatError(`invalid tar header at offset ${at} (an empty header that is not all zeros)`);
    const second = await this.take(BLOCK);
    if (second.length < BLOCK)
      throw new TarFormatError('the archive is truncated (it ends inside the end-of-archive marker)');
    if (!second.equals(ZERO_BLOCK))
      throw new TarFormatError(
        `a lone zero block at offset ${at} is followed by more data: entries hidden behind an early end of archive; the archive was altered`,
      );
    const trailing = this.size - this.pos;
    if (trailing > MAX_TRAILING_ZEROS)
      throw new TarFormatError(`${trailing} bytes follow the end of the archive; the archive was altered`);
    while (this.pos < this.size) {
      const view = await this.take(Math.min(this.size - this.pos, BLOCK * 16));
      if (view.length === 0) return;
      if (view.some((b) => b !== 0))
        throw new TarFormatError(
          `data follows the end of the archive at offset ${this.pos - view.length}; the archive was altered`,
        );
    }
  }

  /**
   * The current entry's data as borrowed chunks (valid until the next chunk is
   * requested). Must be called before the iterator moves on.
   */
  async *data(entry: TarEntry): AsyncGenerator<Buffer> {
    if (this.pos !== entry.offset) throw new Error('tar data read out of order');
    let left = entry.size;
    while (left > 0) {
      const chunk = await this.take(Math.min(left, SLOT));
      if (chunk.length === 0)
        throw new TarFormatError(`the archive is truncated (entry "${entry.path}" needs ${left} more bytes)`);
      left -= chunk.length;
      yield chunk;
    }
  }

  /** The sha256 of every byte of the file, or undefined when bytes were skipped. */
  async wholeFileDigest(): Promise<string | undefined> {
    if (!this.hasher || this.skipped) return undefined;
    // Hash what is left after the end-of-archive marker too: the sidecar covers the file.
    await this.ahead;
    this.ahead = undefined;
    while (this.filePos < this.size) await this.readNext();
    return this.skipped ? undefined : this.hasher.digest();
  }

  async close(): Promise<void> {
    await this.hasher?.terminate();
    await this.fh.close();
  }

  private slotBuffer(slot: number): Buffer {
    let b = this.slots[slot];
    if (!b) {
      b = this.ring ? Buffer.from(this.ring, slot * SLOT, SLOT) : Buffer.allocUnsafeSlow(SLOT);
      this.slots[slot] = b;
    }
    return b;
  }

  /** Up to `n` bytes from the current position, as a view (never crossing windows). */
  private async take(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    let off = this.pos - this.winStart;
    if (off >= this.win.length) {
      await this.fill();
      off = this.pos - this.winStart;
      if (this.win.length === 0) return Buffer.alloc(0);
    }
    const avail = this.win.length - off;
    if (avail >= n || n > BLOCK) {
      const view = this.win.subarray(off, off + Math.min(avail, n));
      this.pos += view.length;
      return view;
    }
    // A header split across two windows: stitch it into a small copy.
    const first = Buffer.from(this.win.subarray(off));
    this.pos += first.length;
    const rest = await this.take(n - first.length);
    return Buffer.concat([first, rest]);
  }

  /** Moves to `target`, reading through small gaps and seeking over large ones. */
  private async skipTo(target: number): Promise<void> {
    if (target <= this.winStart + this.win.length) {
      this.pos = target;
      return;
    }
    if (this.hasher) {
      // The whole-file hash needs every byte: read through.
      while (this.pos < target) {
        const view = await this.take(Math.min(target - this.pos, SLOT));
        if (view.length === 0) return;
      }
      return;
    }
    this.skipped = true;
    // Let an in-flight read land before its slot can come round again.
    await this.ahead;
    this.ahead = undefined;
    this.pos = target;
    this.filePos = target;
    this.winStart = target;
    this.win = Buffer.alloc(0);
    this.nextRead = READ_AFTER_SEEK;
  }

  private async fill(): Promise<void> {
    this.winStart = this.pos;
    this.win = await (this.ahead ?? this.readNext());
    this.ahead = undefined;
    if (this.win.length > 0 && this.filePos < this.size) this.ahead = this.readNext();
  }

  /** Reads the next slot-sized block; the slot must be free of the background hash. */
  private async readNext(): Promise<Buffer> {
    const slot = this.slot;
    this.slot = (this.slot + 1) % SLOTS;
    // Claim the file range before awaiting, so positions never overlap.
    const at = this.filePos;
    const want = Math.max(0, Math.min(this.nextRead, this.size - at));
    this.nextRead = Math.min(SLOT, this.nextRead * 4);
    this.filePos += want;
    await this.hasher?.release(slot);
    const buf = this.slotBuffer(slot);
    const { bytesRead } = want > 0 ? await this.fh.read(buf, 0, want, at) : { bytesRead: 0 };
    if (bytesRead < want) this.filePos = at + bytesRead;
    this.read += bytesRead;
    const view = buf.subarray(0, bytesRead);
    if (bytesRead > 0) this.hasher?.update(slot, slot * SLOT, bytesRead);
    return view;
  }
}

function pad(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}
