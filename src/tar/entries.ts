import { Header, Pax } from 'tar';

export const BLOCK = 512;
const ZEROS = Buffer.alloc(BLOCK * 2);

/** Fixed header fields: the same inputs must give the same bytes on every machine. */
export interface EntryStamp {
  mtime: Date;
}

function header(path: string, size: number, type: 'File' | 'Directory', stamp: EntryStamp): Buffer[] {
  const data = {
    path,
    size,
    type,
    mode: type === 'File' ? 0o644 : 0o755,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    mtime: stamp.mtime,
  } as const;
  const block = Buffer.alloc(BLOCK);
  new Header(data).encode(block, 0);
  // Only a name too long for the ustar fields takes a PAX header (image-cache trees have such names; a
  // bundle's are at most 77 bytes, and its readers refuse extended headers). A size past 8 GiB goes
  // base-256 into the header itself, as GNU tar writes it, and needs none.
  return needsPaxForName(data) ? [new Pax({ path, size, mtime: stamp.mtime }).encode(), block] : [block];
}

function needsPaxForName(data: ConstructorParameters<typeof Header>[0] & { path: string }): boolean {
  return new Header({ ...data, size: 0 }).encode(Buffer.alloc(BLOCK), 0);
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

/** A byte range of a file, to be copied into the archive as it is. */
export interface FileRange {
  file: string;
  offset: number;
  size: number;
}

/** An entry holding `size` bytes of a file from `offset`: header, the range, padding. */
export function* fileEntry(
  path: string,
  file: string,
  size: number,
  stamp: EntryStamp,
  offset = 0,
): Generator<Buffer | FileRange> {
  yield* header(path, size, 'File', stamp);
  if (size > 0) yield { file, offset, size };
  const pad = padding(size);
  if (pad) yield pad;
}

/** Two zero blocks end a tar archive. */
export function endOfArchive(): Buffer {
  return ZEROS;
}
