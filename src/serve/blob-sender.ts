import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FilePiece, ServedBlob } from './content.js';
import type { ByteRange } from './range.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';

/** Read size: large enough for few syscalls, small enough that 16 clients hold little. */
const READ_SIZE = 256 * 1024;

/** The bytes of `pieces` within [start, end] of the blob they make up, in order. */
async function* readRange(pieces: FilePiece[], start: number, end: number): AsyncGenerator<Buffer> {
  let blobOffset = 0;
  for (const p of pieces) {
    const from = Math.max(start, blobOffset);
    const to = Math.min(end, blobOffset + p.size - 1);
    if (from <= to) {
      const stream = createReadStream(p.file, {
        start: p.offset + from - blobOffset,
        end: p.offset + to - blobOffset,
        highWaterMark: READ_SIZE,
      });
      for await (const chunk of stream) yield chunk as Buffer;
    }
    blobOffset += p.size;
  }
}

/** Resolves when `res` can take more, or when the client has gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

async function write(res: ServerResponse, chunk: Buffer, sent: { bytes: number }): Promise<void> {
  sent.bytes += chunk.length;
  if (!res.write(chunk)) await drained(res);
}

export type WholeOutcome = 'sent' | 'damaged' | 'client-gone';

/**
 * Sends a whole blob, hashing every byte on the way. The last chunk is held
 * back until the digest is known: a blob whose bytes do not match is never
 * completed — the connection is cut short of its Content-Length, so the client
 * fails instead of storing bad bytes.
 */
export async function sendWhole(
  res: ServerResponse,
  digest: string,
  blob: ServedBlob,
  sent: { bytes: number },
): Promise<WholeOutcome> {
  const hash = createHash('sha256');
  let held: Buffer | undefined;
  let total = 0;
  for await (const chunk of readRange(blob.pieces, 0, blob.size - 1)) {
    if (res.destroyed) return 'client-gone';
    hash.update(chunk);
    total += chunk.length;
    if (held) await write(res, held, sent);
    held = chunk;
  }
  if (total !== blob.size || `sha256:${hash.digest('hex')}` !== digest) {
    res.destroy();
    return 'damaged';
  }
  if (held) await write(res, held, sent);
  if (res.destroyed) return 'client-gone';
  res.end();
  return 'sent';
}

/** Sends part of a blob already checked whole: a range alone cannot be hashed against the digest. */
export async function sendRange(
  res: ServerResponse,
  blob: ServedBlob,
  range: ByteRange,
  sent: { bytes: number },
): Promise<void> {
  for await (const chunk of readRange(blob.pieces, range.start, range.end)) {
    if (res.destroyed) return;
    await write(res, chunk, sent);
  }
  res.end();
}

/** Whether the blob's bytes match its digest, read without sending. */
export async function bytesMatch(digest: string, blob: ServedBlob): Promise<boolean> {
  const hash = createHash('sha256');
  let total = 0;
  for await (const chunk of readRange(blob.pieces, 0, blob.size - 1)) {
    hash.update(chunk);
    total += chunk.length;
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
  for await (const chunk of readRange(blob.pieces, 0, blob.size - 1)) parts.push(chunk);
  const bytes = Buffer.concat(parts);
  const ok = bytes.length === blob.size && `sha256:${createHash('sha256').update(bytes).digest('hex')}` === digest;
  return ok ? bytes : undefined;
}
