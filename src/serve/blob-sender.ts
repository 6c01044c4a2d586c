import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { ChunkPool } from './chunk-pool.js';
import type { FilePiece, ServedBlob } from './content.js';
import type { ByteRange } from './range.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';

/**
 * Read size: few system calls per blob. Each busy response holds at most two
 * chunks (one being written, the next being read), so the pool's 48 (24 MiB)
 * serve 24 clients at full pace; more take turns.
 */
const CHUNK_SIZE = 512 * 1024;
const pool = new ChunkPool(CHUNK_SIZE, 48);

/**
 * The bytes of `pieces` within [start, end] of the blob they make up, in
 * order, each in a pooled chunk its consumer releases. A file shorter than
 * recorded ends the bytes early: the consumer sees the total fall short.
 */
async function* readRange(blob: ServedBlob, start: number, end: number): AsyncGenerator<Buffer> {
  // Made at start and held (a countersignature): not the pool's, so releasing it does nothing.
  if (blob.memory) {
    yield blob.memory.subarray(start, end + 1);
    return;
  }
  yield* readPieces(blob.pieces, start, end);
}

async function* readPieces(pieces: FilePiece[], start: number, end: number): AsyncGenerator<Buffer> {
  let blobOffset = 0;
  for (const p of pieces) {
    const from = Math.max(start, blobOffset);
    const to = Math.min(end, blobOffset + p.size - 1);
    if (from <= to) yield* readPiece(p.file, p.offset + from - blobOffset, to - from + 1);
    blobOffset += p.size;
  }
}

async function* readPiece(file: string, position: number, length: number): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    for (let done = 0; done < length;) {
      const chunk = await pool.take();
      const n = await fh.read(chunk, 0, Math.min(chunk.length, length - done), position + done).then(
        (r) => r.bytesRead,
        (err: unknown) => {
          pool.release(chunk);
          throw err;
        },
      );
      if (n === 0) return pool.release(chunk);
      done += n;
      yield chunk.subarray(0, n);
    }
  } finally {
    await fh.close();
  }
}

/**
 * Resolves once `chunk` is handed to the kernel, or once the client is gone
 * (a write to a closed connection never calls back): either way the chunk's
 * memory is no longer read and may be reused.
 */
function written(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    const done = () => {
      res.off('close', done);
      resolve();
    };
    res.on('close', done);
    res.write(chunk, done);
  });
}

/** Pooled chunks onto a response, one write in flight while the next chunk is read. */
class ChunkWriter {
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly res: ServerResponse,
    private readonly sent: { bytes: number },
  ) {}

  /** Waits for the write before, then starts this one; the chunk goes back to the pool once written. */
  async send(chunk: Buffer): Promise<void> {
    await this.inFlight;
    this.sent.bytes += chunk.length;
    this.inFlight = written(this.res, chunk).then(() => pool.release(chunk));
  }

  /** Resolves once nothing is being written. */
  settled(): Promise<void> {
    return this.inFlight;
  }
}

export type WholeOutcome = 'sent' | 'damaged' | 'client-gone';

/**
 * Sends a whole blob, hashing every byte on the way. The chunk that ends the
 * blob is sent only once the digest is known to match: a blob whose bytes do
 * not match is never completed — the connection is cut short of its
 * Content-Length, so the client fails instead of storing bad bytes.
 */
export async function sendWhole(
  res: ServerResponse,
  digest: string,
  blob: ServedBlob,
  sent: { bytes: number },
): Promise<WholeOutcome> {
  const hash = createHash('sha256');
  const out = new ChunkWriter(res, sent);
  let total = 0;
  let verdict: boolean | undefined;
  const matches = () => (verdict ??= total === blob.size && `sha256:${hash.digest('hex')}` === digest);
  try {
    for await (const chunk of readRange(blob, 0, blob.size - 1)) {
      hash.update(chunk);
      total += chunk.length;
      if (total === blob.size && !matches()) {
        pool.release(chunk);
        break;
      }
      await out.send(chunk);
      if (res.destroyed) return 'client-gone';
    }
    await out.settled();
    if (!matches()) {
      res.destroy();
      return 'damaged';
    }
    if (res.destroyed) return 'client-gone';
    res.end();
    return 'sent';
  } finally {
    await out.settled();
  }
}

/** Sends part of a blob already checked whole: a range alone cannot be hashed against the digest. */
export async function sendRange(
  res: ServerResponse,
  blob: ServedBlob,
  range: ByteRange,
  sent: { bytes: number },
): Promise<void> {
  const out = new ChunkWriter(res, sent);
  try {
    for await (const chunk of readRange(blob, range.start, range.end)) {
      await out.send(chunk);
      if (res.destroyed) return;
    }
    await out.settled();
    res.end();
  } finally {
    await out.settled();
  }
}

/** Whether the blob's bytes match its digest, read without sending. */
export async function bytesMatch(digest: string, blob: ServedBlob): Promise<boolean> {
  const hash = createHash('sha256');
  let total = 0;
  for await (const chunk of readRange(blob, 0, blob.size - 1)) {
    hash.update(chunk);
    total += chunk.length;
    pool.release(chunk);
  }
  return total === blob.size && `sha256:${hash.digest('hex')}` === digest;
}

/**
 * A small blob (a manifest) read whole; undefined when its bytes do not match
 * its digest, or when the metadata claims a size no manifest has (it would be
 * read into memory).
 */
export async function readWhole(digest: string, blob: ServedBlob): Promise<Buffer | undefined> {
  if (blob.size > MAX_MANIFEST_BYTES) return undefined;
  const parts: Buffer[] = [];
  for await (const chunk of readRange(blob, 0, blob.size - 1)) {
    parts.push(Buffer.from(chunk));
    pool.release(chunk);
  }
  const bytes = Buffer.concat(parts);
  const ok = bytes.length === blob.size && `sha256:${createHash('sha256').update(bytes).digest('hex')}` === digest;
  return ok ? bytes : undefined;
}
