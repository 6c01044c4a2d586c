/**
 * The registry's read ceilings: every config and layer of the set fetched with plain parallel
 * GETs (scripts/bench/plain-http.ts), largest first so no large blob runs alone at the end.
 *
 * - To nowhere: the bytes are counted and dropped. What the registry serves on this machine,
 *   sharing its cores with whoever fetches; no tool that keeps the bytes can get there, so it is
 *   information, not a target.
 * - To disk: each blob written straight to its place in one file sized up front, as export writes
 *   the bundle, with export's flushing: the written bytes pushed to disk (`fdatasync`) every
 *   256 MiB, one flush at a time, then `fsync`, the rename to the final name and an `fsync` of the
 *   folder. No hashing, no tar: the least a tool that keeps the bytes durably can take here, which
 *   export is held against.
 */
import http from 'node:http';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { mapLimit } from '../lib/many-pool.js';
import { expectStatus, plainRequest } from './plain-http.js';
import type { SetBlob, SetContent } from './set-content.js';

export interface CeilingResult {
  seconds: number;
  /** Bytes moved: every blob once. */
  bytes: number;
  blobs: number;
}

/** The file the ceiling to disk wrote: where each blob's bytes are in it. */
export interface SetFile {
  path: string;
  at: Map<string, number>;
}

/** Downloaded bytes gathered to this size before a write, as export gathers them. */
const WRITE_BATCH = 512 * 1024;
/** Written bytes pushed to disk at every this many, as export does while it writes the bundle. */
const SYNC_EVERY = 256 * 1024 * 1024;

const largestFirst = (blobs: SetBlob[]) => [...blobs].sort((a, b) => b.size - a.size);

async function fetchAll(
  host: string,
  content: SetContent,
  parallel: number,
  sink: (blob: SetBlob) => (body: Readable) => Promise<number>,
): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel });
  try {
    const sizes = await mapLimit(largestFirst(content.blobs), parallel, async (b) => {
      const path = `/v2/${b.repositories[0]}/blobs/${b.digest}`;
      const res = await plainRequest(agent, host, { method: 'GET', path }, { sink: sink(b) });
      expectStatus(res, [200], `GET ${path}`);
      if (res.bytes !== b.size) throw new Error(`GET ${path}: ${res.bytes} bytes, expected ${b.size}`);
      return res.bytes;
    });
    return sizes.reduce((s, n) => s + n, 0);
  } finally {
    agent.destroy();
  }
}

async function drain(body: Readable): Promise<number> {
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) n += chunk.length;
  return n;
}

/** Every blob fetched `parallel` at once and dropped. */
export async function readCeiling(host: string, content: SetContent, parallel: number): Promise<CeilingResult> {
  const started = process.hrtime.bigint();
  const bytes = await fetchAll(host, content, parallel, () => drain);
  return { seconds: elapsed(started), bytes, blobs: content.blobs.length };
}

/** Every blob fetched `parallel` at once into its place in `file`, flushed as export flushes. */
export async function readCeilingToDisk(
  host: string,
  content: SetContent,
  parallel: number,
  file: string,
): Promise<CeilingResult & { file: SetFile }> {
  const at = new Map<string, number>();
  let size = 0;
  for (const b of content.blobs) {
    at.set(b.digest, size);
    size += b.size;
  }
  const started = process.hrtime.bigint();
  const out = await DurableFile.create(`${file}.partial`, size);
  try {
    const bytes = await fetchAll(host, content, parallel, (b) => (body) => out.writeStream(body, at.get(b.digest)!));
    await out.finish(file);
    return { seconds: elapsed(started), bytes, blobs: content.blobs.length, file: { path: file, at } };
  } finally {
    await out.close();
  }
}

const elapsed = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

/** One file written at offsets, one write at a time, flushed every SYNC_EVERY bytes and at the end. */
class DurableFile {
  private queue: Promise<void> = Promise.resolve();
  private written = 0;
  private syncedAt = 0;
  private syncing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(path: string, size: number): Promise<DurableFile> {
    const fh = await open(path, 'w');
    await fh.truncate(size);
    return new DurableFile(path, fh);
  }

  /** The body's bytes from `position` on, in batches of WRITE_BATCH; the count written. */
  async writeStream(body: Readable, position: number): Promise<number> {
    let batch: Buffer[] = [];
    let batched = 0;
    let at = position;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= WRITE_BATCH) {
        await this.writeAt(batch, at);
        at += batched;
        [batch, batched] = [[], 0];
      }
    }
    if (batched > 0) await this.writeAt(batch, at);
    return at + batched - position;
  }

  // Concurrent writes to one file only queue on its inode lock: one at a time, as export writes.
  private writeAt(buffers: Buffer[], position: number): Promise<void> {
    const write = this.queue.then(async () => {
      let bufs = buffers;
      let at = position;
      while (bufs.length > 0) {
        const { bytesWritten } = await this.fh.writev(bufs, at);
        at += bytesWritten;
        this.written += bytesWritten;
        bufs = skipBytes(bufs, bytesWritten);
      }
      if (this.written - this.syncedAt >= SYNC_EVERY && !this.syncing) {
        this.syncedAt = this.written;
        this.syncing = this.fh.datasync().finally(() => (this.syncing = undefined));
      }
    });
    this.queue = write.catch(() => undefined);
    return write;
  }

  /** Everything on disk under its final name, the folder's entry too. */
  async finish(final: string): Promise<void> {
    await this.queue;
    await this.syncing;
    await this.fh.sync();
    await this.close();
    await rename(this.path, final);
    const folder = await open(dirname(final), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/** `bufs` without their first `n` bytes (what a short vectored write left). */
function skipBytes(bufs: Buffer[], n: number): Buffer[] {
  const out = [...bufs];
  while (n > 0 && out.length > 0) {
    const first = out[0]!;
    if (first.length <= n) {
      n -= first.length;
      out.shift();
    } else {
      out[0] = first.subarray(n);
      n = 0;
    }
  }
  return out;
}
