import { rmSync } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { onInterrupt } from './interrupt.js';
import { leftByDeadProcess } from './process.js';

/**
 * Output that appears whole or not at all. A file (or folder) is written under
 * a hidden partial name beside its final name, `.NAME.partial-PID`, flushed to
 * disk, and renamed over the final name; the folder is flushed too, so the
 * rename itself survives a power cut. A reader of NAME sees the old content or
 * the whole new one, never a part.
 *
 * The process id in the partial name tells whose it is: a partial of a process
 * that no longer exists (killed, or the machine lost power) can only be
 * garbage, and the next writer of the same name removes it.
 */

/** The hidden name `path` is written under before it is published. */
export function partialPath(path: string): string {
  return join(dirname(path), `${partialPrefix(path)}${process.pid}`);
}

function partialPrefix(path: string): string {
  return `.${basename(path)}.partial-`;
}

/**
 * Partials beside `path` left by processes that no longer exist, with the
 * files a writer keeps next to its partial (`.NAME.partial-PID.done`).
 */
export async function stalePartials(path: string): Promise<string[]> {
  const prefix = partialPrefix(path);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return [];
  }
  return names
    .filter((name) => name.startsWith(prefix) && ownerGone(name.slice(prefix.length)))
    .map((name) => join(dirname(path), name));
}

/** Whether the process whose id starts `rest` is another one, and gone. */
function ownerGone(rest: string): boolean {
  return leftByDeadProcess(Number(/^(\d+)/.exec(rest)?.[1]));
}

/** Removes the stale partials beside `path` (files or whole folders). */
export async function removeStalePartials(path: string): Promise<void> {
  for (const stale of await stalePartials(path)) await rm(stale, { recursive: true, force: true });
}

/** Flushes `path` (a file, or a folder's entries) to disk. */
export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Gives a partial that is complete and on disk its final name, and flushes the
 * folder so that the new name is on disk as well.
 */
export async function publishPartial(partial: string, path: string): Promise<void> {
  await rename(partial, path);
  await syncFolder(dirname(path));
}

/** Codes of file systems that cannot flush a folder: the rename is then as durable as they make it. */
const CANNOT_SYNC_FOLDER = new Set(['EINVAL', 'ENOTSUP', 'EISDIR', 'EPERM']);

/** Flushes a folder's entries (a rename in it) to disk, where the file system can. */
export async function syncFolder(dir: string): Promise<void> {
  try {
    await syncPath(dir);
  } catch (err) {
    if (!CANNOT_SYNC_FOLDER.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
}

/** Writes `content` to a new file at `partial`, on disk when it returns; the caller publishes it. */
export async function writePartial(partial: string, content: string | Uint8Array, mode = 0o666): Promise<void> {
  await writeNewFile(partial, content, mode, true);
}

/** `wx`: an existing file or a link at that name is an error, never followed. */
async function writeNewFile(path: string, content: string | Uint8Array, mode: number, sync: boolean): Promise<void> {
  const handle = await open(path, 'wx', mode);
  try {
    await handle.writeFile(content);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates `path` atomically through `write`, which fills the partial it is
 * given (a file or a folder) and resolves when it is complete. The partial is
 * then flushed and published; a failure, or Ctrl-C, removes it. Stale partials
 * of the same name, a leftover of this very pid included, are removed first.
 */
export async function writeAtomically<T>(path: string, write: (partial: string) => Promise<T>): Promise<T> {
  await removeStalePartials(path);
  const partial = partialPath(path);
  await rm(partial, { recursive: true, force: true });
  const forget = onInterrupt(() => rmSync(partial, { recursive: true, force: true }));
  try {
    const result = await write(partial);
    await syncPath(partial);
    await publishPartial(partial, path);
    return result;
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  } finally {
    forget();
  }
}

/** Writes `content` to `path` atomically (see `writeAtomically`); `mode` as for a new file, under the umask. */
export async function writeFileAtomic(path: string, content: string | Uint8Array, mode = 0o666): Promise<void> {
  // Not flushed here: writeAtomically flushes the partial before it publishes it.
  await writeAtomically(path, (partial) => writeNewFile(partial, content, mode, false));
}
