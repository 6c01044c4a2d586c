import { open, type FileHandle } from 'node:fs/promises';
import { checkPlan, type BlobSpan } from './blob-check.js';
import { RingCheckFailed, SharedRing } from './ring.js';
import { DamagedBlobError } from './source.js';
import { SpanCursor, type RangeRead } from './span-cursor.js';

/**
 * The `oci` layer written from the bundle: its bytes are read by offset
 * straight into the slots of a shared ring, and each filled slot is, at once,
 * written to the layer file, checked against the blobs' digests on one thread
 * and hashed into the layer's digest on another (ring.ts). A slot is filled
 * again only once its write and both threads are done with it: memory is the
 * ring's size, nothing is allocated per chunk, and this thread only moves
 * bytes.
 *
 * Slots of 2 MiB stay in the processor's cache between the read and the two
 * hashes (larger ones measured slower). Reads run a few slots ahead, and
 * writeback is asked for every FLUSH_EVERY bytes so the final flush finds
 * little left.
 */

const SLOTS = 8;
const SLOT_SIZE = 2 * 1024 * 1024;
/** Slots being filled at once, ahead of the one handed on. */
const READ_AHEAD = 3;
const FLUSH_EVERY = 32 * 1024 * 1024;

interface Filled {
  seq: number;
  length: number;
}

export interface CopiedLayer {
  digest: string;
  size: number;
}

export async function copyLayer(
  path: string,
  pieces: Array<Buffer | BlobSpan>,
  onBytes: (n: number) => void,
): Promise<CopiedLayer> {
  const check = checkPlan(pieces);
  const ring = new SharedRing(SLOTS, SLOT_SIZE, check.units);
  const files = new BundleFiles();
  let out: FileHandle | undefined;
  try {
    out = await open(path, 'wx', 0o644);
    await out.chmod(0o644);
    const size = await pump(new SpanCursor(pieces), ring, files, new LayerFile(out, onBytes));
    await out.datasync();
    return { digest: await ring.finish(), size };
  } catch (err) {
    await ring.abort();
    throw err instanceof RingCheckFailed ? check.damaged(err.unit, err.whole) : err;
  } finally {
    await out?.close();
    await files.close();
  }
}

/** The loop: fill slots in order, a few ahead, and hand each on once filled. */
async function pump(cursor: SpanCursor, ring: SharedRing, files: BundleFiles, layer: LayerFile): Promise<number> {
  const filling: Array<Promise<Filled>> = [];
  let seq = 0;
  let size = 0;
  const handOn = (f: Filled) => {
    layer.write(f.seq, ring.slots[f.seq % SLOTS]!.subarray(0, f.length));
    ring.publish(f.seq, f.length);
    size += f.length;
  };
  try {
    while (!cursor.done) {
      // The slot's previous use: written out, and done with by both threads.
      if (seq >= SLOTS) await Promise.all([layer.written(seq - SLOTS), ring.hashed(seq - SLOTS + 1)]);
      const filled = fill(seq, ring.slots[seq % SLOTS]!, cursor, files);
      seq++;
      // Awaited in turn below; a read failing meanwhile must not count as unhandled.
      filled.catch(() => {});
      filling.push(filled);
      if (filling.length >= READ_AHEAD) handOn(await filling.shift()!);
    }
    while (filling.length > 0) handOn(await filling.shift()!);
    await layer.finish();
    await ring.hashed(seq);
    return size;
  } finally {
    // Nothing may still be reading into the ring or writing from it once this returns.
    await Promise.allSettled([...filling, layer.settled()]);
  }
}

async function fill(seq: number, slot: Buffer, cursor: SpanCursor, files: BundleFiles): Promise<Filled> {
  let length = 0;
  const reads: Array<Promise<void>> = [];
  while (length < slot.length) {
    const piece = cursor.next(slot.length - length);
    if (!piece) break;
    if (Buffer.isBuffer(piece)) length += piece.copy(slot, length);
    else {
      reads.push(files.read(piece, slot.subarray(length, length + piece.length)));
      length += piece.length;
    }
  }
  await Promise.all(reads);
  return { seq, length };
}

/** The layer file: positional writes in flight, and writeback asked for as it grows. */
class LayerFile {
  private readonly writes = new Map<number, Promise<void>>();
  private position = 0;
  private unflushed = 0;
  private flushing: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly fh: FileHandle,
    private readonly onBytes: (n: number) => void,
  ) {}

  write(seq: number, bytes: Buffer): void {
    const done = writeAt(this.fh, bytes, this.position).then(() => this.wrote(bytes.length));
    done.catch((err: unknown) => (this.failure ??= err));
    this.writes.set(seq, done);
    this.position += bytes.length;
  }

  /** Resolves once slot `seq`'s write is done (or was never made); rejects on any write's failure. */
  async written(seq: number): Promise<void> {
    const w = this.writes.get(seq);
    this.writes.delete(seq);
    await w;
    if (this.failure) throw this.failure;
  }

  async finish(): Promise<void> {
    for (const seq of [...this.writes.keys()]) await this.written(seq);
    await this.flushing;
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.writes.values(), this.flushing]);
  }

  private wrote(n: number): void {
    this.onBytes(n);
    this.unflushed += n;
    if (this.unflushed < FLUSH_EVERY || this.flushing) return;
    this.unflushed = 0;
    this.flushing = this.fh.datasync().finally(() => (this.flushing = undefined));
    this.flushing.catch((err: unknown) => (this.failure ??= err));
  }
}

async function writeAt(fh: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** The bundle files, each opened once, read by offset. */
class BundleFiles {
  private readonly handles = new Map<string, Promise<FileHandle>>();

  async read(r: RangeRead, into: Buffer): Promise<void> {
    let fh = this.handles.get(r.path);
    if (!fh) this.handles.set(r.path, (fh = open(r.path, 'r')));
    const file = await fh;
    for (let done = 0; done < into.length;) {
      const { bytesRead } = await file.read(into, done, into.length - done, r.position + done);
      // The file is shorter than when its structure was checked.
      if (bytesRead === 0) throw new DamagedBlobError(r.path, r.digest);
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    const handles = await Promise.allSettled(this.handles.values());
    for (const h of handles) if (h.status === 'fulfilled') await h.value.close();
  }
}
