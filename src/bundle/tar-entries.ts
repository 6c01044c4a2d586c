import { createReadStream } from 'node:fs';
import { Header, Pax } from 'tar';

export const BLOCK = 512;
const ZEROS = Buffer.alloc(BLOCK * 2);

/** Fixed header fields: the same inputs must give the same bytes on every machine. */
export interface EntryStamp {
  mtime: Date;
}

function header(path: string, size: number, type: 'File' | 'Directory', stamp: EntryStamp): Buffer[] {
  const data = { path, size, type, mode: type === 'File' ? 0o644 : 0o755, uid: 0, gid: 0, uname: '', gname: '', mtime: stamp.mtime } as const;
  const h = new Header(data);
  const block = Buffer.alloc(BLOCK);
  const needPax = h.encode(block, 0);
  // Names longer than ustar allows (sha512 blob paths) go in a PAX extended header.
  return needPax ? [new Pax({ path, size, mtime: stamp.mtime }).encode(), block] : [block];
}

export function padding(size: number): Buffer | undefined {
  const rest = size % BLOCK;
  return rest === 0 ? undefined : ZEROS.subarray(0, BLOCK - rest);
}

export function* bytesEntry(path: string, bytes: Buffer, stamp: EntryStamp): Generator<Buffer> {
  yield* header(path, bytes.length, 'File', stamp);
  if (bytes.length > 0) yield bytes;
  const pad = padding(bytes.length);
  if (pad) yield pad;
}

export function* directoryEntry(path: string, stamp: EntryStamp): Generator<Buffer> {
  yield* header(path.endsWith('/') ? path : `${path}/`, 0, 'Directory', stamp);
}

/**
 * An entry holding `size` bytes of a file from `offset`, streamed. The size is
 * fixed up front (it is in the header), so a file that shrank underneath is an
 * error rather than a corrupt archive.
 */
export async function* fileEntry(path: string, file: string, size: number, stamp: EntryStamp, offset = 0): AsyncGenerator<Buffer> {
  yield* header(path, size, 'File', stamp);
  let seen = 0;
  for await (const chunk of size === 0 ? [] : createReadStream(file, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 })) {
    seen += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
  if (seen !== size) throw new Error(`${file} changed while being archived (expected to read ${size} bytes, read ${seen})`);
  const pad = padding(size);
  if (pad) yield pad;
}

/** Two zero blocks end a tar archive. */
export function endOfArchive(): Buffer {
  return ZEROS;
}
