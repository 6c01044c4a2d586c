import { open, type FileHandle } from 'node:fs/promises';

/**
 * One file of the cache written from a stream of chunks: created new (mode
 * 0644 whatever the umask), and on disk when this returns. Writeback is asked
 * for every FLUSH_EVERY bytes while the writing goes on, so the final flush
 * finds little left to wait for instead of the whole file.
 */

export interface WriteHooks {
  onBytes?: (n: number) => void;
}

const FLUSH_EVERY = 32 * 1024 * 1024;

export async function writeFile(
  path: string,
  chunks: Iterable<Buffer> | AsyncIterable<Buffer>,
  hooks: WriteHooks = {},
): Promise<void> {
  const fh = await open(path, 'wx', 0o644);
  let flushing: Promise<void> | undefined;
  try {
    await fh.chmod(0o644);
    let unflushed = 0;
    for await (const bytes of chunks) {
      await writeAll(fh, bytes);
      hooks.onBytes?.(bytes.length);
      unflushed += bytes.length;
      if (unflushed >= FLUSH_EVERY && !flushing) {
        unflushed = 0;
        flushing = fh.datasync().finally(() => (flushing = undefined));
      }
    }
    await flushing;
    await fh.datasync();
  } finally {
    await flushing?.catch(() => {});
    await fh.close();
  }
}

/** Small documents: the bytes as one chunk. */
export function writeBytes(path: string, bytes: Buffer): Promise<void> {
  return writeFile(path, [bytes]);
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done);
    done += bytesWritten;
  }
}
