import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** A carried file's bytes on local disk, with their digest and size as hashed. */
export interface StagedFile {
  path: string;
  digest: string;
  size: number;
}

/** The most bytes one carried file may have: far above any boot image, far below what fills a disk by accident. */
export const MAX_FILE_BYTES = 64 * 1024 ** 3;

/**
 * The sha256 and size of a local file, read as a stream (a 1.5 GiB ISO is
 * never held in memory). Undefined when it is not a regular file.
 */
export async function hashFile(path: string): Promise<{ digest: string; size: number } | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}
