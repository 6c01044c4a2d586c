import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** Why a small file beside a bundle cannot be used. */
export class SmallFileError extends Error {
  override name = 'SmallFileError';
}

/**
 * Reads a small file that travels with a bundle (the `.sha256` sidecar), or
 * returns undefined when there is none. Whoever controls the stick controls
 * this file too: it must be a regular file of at most `maxBytes`. A FIFO would
 * block a plain read forever (it is opened non-blocking and refused), a link
 * to `/dev/zero` would be read without end, a folder is not a sidecar.
 */
export async function readSmallRegularFile(path: string, maxBytes: number): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SmallFileError(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SmallFileError(`is not a regular file (${kindOf(st)})`);
    if (st.size > maxBytes)
      throw new SmallFileError(`is ${st.size} bytes, more than the ${maxBytes} bytes it can hold`);
    const buf = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > maxBytes) throw new SmallFileError(`grew past ${maxBytes} bytes while it was read`);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

function kindOf(st: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}
