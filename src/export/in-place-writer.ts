import { createHash } from 'node:crypto';
import { open, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DigestMismatchError, sha256Digest } from '../oci/digest.js';
import { readBlob } from '../bundle/blob-ranges.js';
import type { BlobStore } from './blob-store.js';
import type { BlobRecord, BundleMetadata, ImageRecord } from '../bundle/format.js';
import { HashingRing } from '../util/hashing/hashing-ring.js';
import { bundleDocuments, tarPieces, type BundleDocuments } from '../bundle/layout.js';
import { partialPath, stalePartials } from '../util/atomic-file.js';
import { publishBundle, type WriteResult } from './publish.js';
import type { WriteOptions } from './cache-writer.js';
import { isDiskFull } from '../util/disk-full.js';
import { Journal } from './journal.js';

/** First line of a journal: its format, then what identifies the bundle being written. */
const JOURNAL_MAGIC = 'airgap-bundle partial 1';
/** Downloaded bytes are gathered to this size before a write: fewer, larger writes. */
const WRITE_BATCH = 512 * 1024;
/** At most this many pieces in one vectored write (the system's IOV_MAX). */
const WRITE_PIECES = 1024;
/** Dirty pages pushed to disk as the checksum pass advances, so the closing fsync has little left. */
const SYNC_EVERY = 256 * 1024 * 1024;
/** A run of bytes already checked that is at least this long is hashed before waiting for the next blob. */
const HASH_RUN = 4 * 1024 * 1024;
/** A downloaded blob at most this size is checked on the main thread (see appendIfIntact). */
const CHECK_HERE = 64 * 1024;

export interface PlacedOptions extends Pick<WriteOptions, 'sign' | 'sourceDateEpoch' | 'onBytes'> {
  output: string;
  /** The bundle's metadata, from every image and blob. */
  describe(content: { images: ImageRecord[]; blobs: BlobRecord[] }): BundleMetadata;
}

/** A blob's bytes in the file being written. */
interface BlobPlace {
  of: string;
  at: number;
  size: number;
}

/**
 * The bundle once its headers and documents are in the file: only where the
 * blobs go is kept. Everything between them (tar headers, documents, padding)
 * is read back from the file by the checksum pass, so that memory does not
 * grow with the blob count by a header each (22 MB at 40,000 blobs) and the
 * metadata bytes (17 MB at 10,000 images) are not held through the downloads.
 */
interface Layout {
  metadata: BundleMetadata;
  signature?: Buffer;
  size: number;
  /** Every blob, in tar order. */
  blobs: BlobPlace[];
  /** Where each blob's bytes start in the file. */
  blobAt: Map<string, number>;
}

/**
 * A single bundle written in one pass: the tar's layout is fixed once every blob
 * is known (names and sizes decide every offset), the file is created at its
 * full size, and each download writes its bytes straight to their place, while a
 * checksum pass follows behind in tar order. No byte is written twice.
 *
 * The partial file keeps a journal of the blobs that are complete in it. A run
 * that is interrupted or fails leaves both behind (hidden, beside the output);
 * a rerun that would write the same bundle adopts them and fetches only what is
 * missing, after re-hashing what the journal lists. Anything else left by a
 * dead run is removed.
 */
export class InPlaceWriter implements BlobStore {
  private readonly manifests = new Map<string, Buffer>();
  private readonly tmp: string;
  private readonly journalPath: string;
  private journal: Journal | undefined;
  private layout: Layout | undefined;
  private fh: FileHandle | undefined;
  private journaled = new Set<string>();
  /** Downloaded in this run and not hashed yet: the checksum pass checks them. */
  private readonly unchecked = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private spaceFailure = false;
  /** Set when a partial bundle of an earlier run was taken over. */
  private resumedFrom: string | undefined;

  constructor(private readonly opts: PlacedOptions) {
    this.tmp = partialPath(opts.output);
    this.journalPath = `${this.tmp}.done`;
  }

  /** The partial file: what a rerun resumes from. */
  get partial(): string {
    return this.tmp;
  }

  /** The bundle's size in bytes, once prepared. */
  get size(): number {
    return this.layout?.size ?? 0;
  }

  /** True once the partial file exists: a failure from then on leaves something to resume from. */
  get started(): boolean {
    return this.layout !== undefined;
  }

  /** True once a write failed for lack of space: the partial is not worth keeping. */
  get outOfSpace(): boolean {
    return this.spaceFailure;
  }

  async putBytes(digest: string, bytes: Buffer): Promise<void> {
    if (sha256Digest(bytes) !== digest) throw new Error(`refusing to store bytes under ${digest}: digest differs`);
    this.manifests.set(digest, bytes);
  }

  async prepare(content: { images: ImageRecord[]; blobs: BlobRecord[] }): Promise<void> {
    const metadata = this.opts.describe(content);
    const docs = bundleDocuments(metadata, this.opts);
    const { size, blobs, blobAt } = planBlobs(metadata, docs);
    this.layout = { metadata, ...(docs.signature ? { signature: docs.signature } : {}), size, blobs, blobAt };
    const key = `${JOURNAL_MAGIC} ${createHash('sha256')
      .update(docs.metadataBytes)
      .update(docs.signature ?? Buffer.alloc(0))
      .digest('hex')} ${size}`;
    await this.adoptOrCreate(key, size);
    await this.writeKnownBytes(metadata, docs);
    // In the file now; the checksum pass reads them back from there.
    this.manifests.clear();
  }

  /** Everything already in memory goes to its place: headers, documents, padding, manifests. */
  private async writeKnownBytes(metadata: BundleMetadata, docs: BundleDocuments): Promise<void> {
    let run: Buffer[] = [];
    let runAt = 0;
    let runEnd = -1;
    let at = 0;
    for (const piece of tarPieces(metadata, docs)) {
      const bytes = Buffer.isBuffer(piece)
        ? piece
        : this.manifests.get(piece.of)?.subarray(piece.offset, piece.offset + piece.size);
      if (bytes) {
        // Adjacent pieces go in one write, up to a bound on what one write gathers.
        if (at !== runEnd || run.length >= WRITE_PIECES) {
          if (run.length > 0) await this.writeAt(run, runAt);
          run = [];
          runAt = at;
        }
        run.push(bytes);
        runEnd = at + bytes.length;
      }
      at += Buffer.isBuffer(piece) ? piece.length : piece.size;
    }
    if (run.length > 0) await this.writeAt(run, runAt);
  }

  async has(digest: string, size: number): Promise<boolean> {
    const at = this.layout?.blobAt.get(digest);
    if (at === undefined || !this.journaled.has(digest)) return false;
    try {
      for await (const _ of readBlob(this.tmp, digest, { offset: at, size }));
      return true;
    } catch {
      return false;
    }
  }

  async put(digest: string, size: number, source: Readable, onBytes?: (n: number) => void): Promise<void> {
    const at = this.layout?.blobAt.get(digest);
    if (at === undefined) throw new Error(`${digest} has no place in the bundle being written`);
    let position = at;
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
      const bufs = batch;
      const n = batched;
      batch = [];
      batched = 0;
      await this.writeAt(bufs, position);
      position += n;
    };
    try {
      // Only counted here: the checksum pass that follows reads every byte back anyway, and
      // hashes each blob on its own there, off this thread (see finish).
      let seen = 0;
      for await (const chunk of source as AsyncIterable<Buffer>) {
        seen += chunk.length;
        if (seen > size) throw new DigestMismatchError({ digest, size }, { digest: 'unknown', size: seen });
        onBytes?.(chunk.length);
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= WRITE_BATCH) await flush();
      }
      if (seen !== size) throw new DigestMismatchError({ digest, size }, { digest: 'unknown', size: seen });
      if (batched > 0) await flush();
      this.unchecked.add(digest);
      // Listed once all its bytes were handed to the file; a rerun re-hashes what is listed.
      await this.journal?.add(digest);
    } catch (err) {
      source.destroy();
      this.noteSpace(err);
      throw err;
    }
  }

  /**
   * Follows the downloads in tar order, hashing the file as it fills in and each
   * blob downloaded in this run on its own: one whose bytes do not match its
   * digest is taken back out of the file's hash and fetched again (`refetch`),
   * up to `retries` times. Then syncs the file, writes the sidecar and gives the
   * bundle its final name.
   */
  async finish(
    ready: (digest: string) => Promise<void>,
    refetch: (digest: string) => Promise<void>,
    retries: number,
  ): Promise<WriteResult> {
    const layout = this.layout;
    const fh = this.fh;
    if (!layout || !fh) throw new Error('the bundle layout is not prepared');
    const sink = HashingRing.inPlace(this.opts.onBytes);
    let src: FileHandle | undefined;
    let syncedAt = 0;
    let syncing: Promise<void> | undefined;
    try {
      const file = (src = await open(this.tmp, 'r'));
      // `hashed`: where the file's hash has got to. Blobs already checked join the run of
      // bytes before them; a blob downloaded in this run is hashed on its own as well.
      let hashed = 0;
      const advanceTo = (end: number) => {
        hashed = end;
        if (hashed - syncedAt >= SYNC_EVERY && !syncing) {
          syncedAt = hashed;
          syncing = fh.datasync().finally(() => void (syncing = undefined));
        }
      };
      const hashUpTo = async (end: number) => {
        if (end > hashed) await sink.appendRange(file, this.tmp, hashed, end - hashed);
        advanceTo(end);
      };
      for (const blob of layout.blobs) {
        if (blob.at - hashed >= HASH_RUN) await hashUpTo(blob.at);
        await ready(blob.of);
        if (!this.unchecked.has(blob.of)) continue;
        // A small blob is read together with the bytes before it (see appendIfIntact).
        if (blob.size > CHECK_HERE) await hashUpTo(blob.at);
        await this.check(sink, file, hashed, blob, refetch, retries);
        advanceTo(blob.at + blob.size);
      }
      await hashUpTo(layout.size);
      const sha256 = await sink.finish();
      await syncing;
      await this.queue;
      await fh.sync();
      await fh.close();
      this.fh = undefined;
      await this.journal?.close();
      this.journal = undefined;
      await rm(this.journalPath, { force: true });
      return await publishBundle(this.tmp, this.opts.output, {
        bytes: layout.size,
        sha256,
        metadata: layout.metadata,
        ...(layout.signature ? { signature: layout.signature } : {}),
      });
    } finally {
      await src?.close();
      await sink.close();
    }
  }

  /**
   * Hashes one downloaded blob on its way through the checksum pass, with the
   * bytes since `from` that the file's hash has not taken yet; a damaged one is
   * fetched again.
   */
  private async check(
    sink: HashingRing,
    src: FileHandle,
    from: number,
    blob: BlobPlace,
    refetch: (digest: string) => Promise<void>,
    retries: number,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const actual = await this.appendIfIntact(sink, src, from, blob);
      if (actual === blob.of) {
        this.unchecked.delete(blob.of);
        return;
      }
      if (attempt >= retries) throw damagedUpstream(blob.of, blob.size, actual, attempt);
      await refetch(blob.of);
    }
  }

  /**
   * Adds the bytes from `from` to the blob's end to the file's hash when the
   * blob matches its digest, and returns the digest its bytes have. A large blob
   * is hashed on the hashing thread (`from` is then its start) and taken back
   * out if it does not match. A small one is read with the bytes before it in one
   * read and hashed here: handing a blob of a few KiB to the hashing thread took
   * several messages and waits each, which at thousands of blobs cost more than
   * the hashing.
   */
  private async appendIfIntact(sink: HashingRing, src: FileHandle, from: number, blob: BlobPlace): Promise<string> {
    const { of: digest, at, size } = blob;
    if (size > CHECK_HERE) {
      const actual = await sink.appendRangeChecked(src, this.tmp, at, size);
      if (actual !== digest) sink.unappend(size);
      return actual;
    }
    const bytes = await readRange(src, this.tmp, from, at + size - from);
    const actual = sha256Digest(bytes.subarray(at - from));
    if (actual === digest) await sink.append(bytes);
    return actual;
  }

  /** Closes the file after a failure; keeps it (and its journal) for a rerun unless told not to. */
  async abort(keep: boolean): Promise<void> {
    await this.queue;
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    await this.journal?.close();
    this.journal = undefined;
    if (!keep) {
      await rm(this.tmp, { force: true });
      await rm(this.journalPath, { force: true });
    }
  }

  /** Takes over the partial file of a dead run that was writing this same bundle, or starts a new one. */
  private async adoptOrCreate(key: string, size: number): Promise<void> {
    const stale = await stalePartials(this.opts.output);
    for (const path of stale.filter((p) => /\.partial-\d+$/.test(p))) {
      if (this.resumedFrom) break;
      const listed = await Journal.read(`${path}.done`);
      const st = await stat(path).catch(() => undefined);
      if (listed.key !== key || st?.size !== size) continue;
      await rename(path, this.tmp);
      await rename(`${path}.done`, this.journalPath);
      this.journaled = listed.digests;
      this.resumedFrom = path;
    }
    for (const path of stale)
      if (path !== this.resumedFrom && path !== `${this.resumedFrom}.done`) await rm(path, { force: true });
    if (this.resumedFrom) {
      this.fh = await open(this.tmp, 'r+');
      this.journal = await Journal.reopen(this.journalPath);
      return;
    }
    this.fh = await open(this.tmp, 'w');
    await this.fh.truncate(size);
    this.journal = await Journal.create(this.journalPath, key);
  }

  /** Writes one at a time: concurrent writes to one file only queue on its inode lock. */
  private writeAt(buffers: Buffer[], position: number): Promise<void> {
    const fh = this.fh;
    if (!fh) return Promise.reject(new Error('the bundle file is not open'));
    const run = this.queue.then(async () => {
      let bufs = buffers;
      let at = position;
      while (bufs.length > 0) {
        const { bytesWritten } = await fh.writev(bufs, at);
        at += bytesWritten;
        bufs = skip(bufs, bytesWritten);
      }
    });
    this.queue = run.catch((err: unknown) => this.noteSpace(err));
    return run;
  }

  private noteSpace(err: unknown): void {
    if (isDiskFull(err)) this.spaceFailure = true;
  }
}

/** statfs magic numbers of filesystems that cannot leave a hole in a file: FAT (vfat, msdos) and exFAT. */
const WITHOUT_HOLES = new Set([0x4d44, 0x2011bab0]);

/** Whether files in `dir` can be written out of order without zero-filling what lies between. */
export async function keepsHoles(dir: string): Promise<boolean> {
  return fsKeepsHoles((await statfs(dir)).type);
}

export function fsKeepsHoles(fsType: number): boolean {
  return !WITHOUT_HOLES.has(fsType);
}

/** Where every blob goes in the tar, and the tar's size: a pure function of the metadata and documents. */
function planBlobs(metadata: BundleMetadata, docs: BundleDocuments): Pick<Layout, 'size' | 'blobs' | 'blobAt'> {
  const blobs: BlobPlace[] = [];
  const blobAt = new Map<string, number>();
  let at = 0;
  for (const piece of tarPieces(metadata, docs)) {
    if (Buffer.isBuffer(piece)) at += piece.length;
    else {
      blobs.push({ of: piece.of, at, size: piece.size });
      if (piece.offset === 0) blobAt.set(piece.of, at);
      at += piece.size;
    }
  }
  return { size: at, blobs, blobAt };
}

/** The error of a blob still damaged after its last download. */
function damagedUpstream(digest: string, size: number, actual: string, attempt: number): Error {
  const mismatch = new DigestMismatchError({ digest, size }, { digest: actual, size });
  return new Error(
    `blob ${digest}: content does not match after ${attempt + 1} download${attempt > 0 ? 's' : ''}: ${mismatch.message}; the registry serves damaged data: rerun later, or fetch through another mirror (--registry-mirror)`,
  );
}

/** `size` bytes of `src` from `offset`; a file that ends before is an error. */
async function readRange(src: FileHandle, name: string, offset: number, size: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(size);
  let done = 0;
  while (done < size) {
    const { bytesRead } = await src.read(bytes, done, size - done, offset + done);
    if (bytesRead === 0)
      throw new Error(
        `${name} changed while being written (it ends before offset ${offset + size}): something else wrote to it; rerun the export`,
      );
    done += bytesRead;
  }
  return bytes;
}

/** `bufs` without its first `n` bytes. */
function skip(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let left = n;
  for (const b of bufs) {
    if (left >= b.length) left -= b.length;
    else {
      out.push(left > 0 ? b.subarray(left) : b);
      left = 0;
    }
  }
  return out;
}
