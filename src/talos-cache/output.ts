import { rmSync } from 'node:fs';
import { mkdir, readdir, rm, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { partialPath, publishPartial, removeStalePartials } from '../util/atomic-file.js';
import { formatBytes } from '../util/bytes.js';
import { onInterrupt } from '../util/interrupt.js';
import { UserInputError } from '../util/user-input.js';
import { printable } from '../util/text.js';

/**
 * The output folder is built under its partial name beside it
 * (`.NAME.partial-PID`, see util/atomic-file.ts) and renamed when complete: the final name never holds
 * a partial cache. A failed or interrupted run removes its temporary folder;
 * those of runs that were killed are removed by the next run.
 */
export interface PendingOutput {
  /** Where to write. */
  temp: string;
  /** Gives the complete folder its final name. */
  publish(): Promise<void>;
  /** Removes the temporary folder (after a failure). */
  discard(): Promise<void>;
}

/** Refuses an `-o` that exists and is not an empty folder, before any bundle is read. */
export async function checkOutput(output: string): Promise<void> {
  let isDir: boolean;
  try {
    isDir = (await stat(output)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isDir) throw new UserInputError(`-o ${printable(output)} exists and is not a folder; choose a new name`);
  if ((await readdir(output)).length > 0)
    throw new UserInputError(
      `-o ${printable(output)} exists and is not empty; choose a new name, or remove it first (nothing is ever merged into an existing cache)`,
    );
}

export async function pendingOutput(output: string): Promise<PendingOutput> {
  const final = resolve(output);
  await mkdir(dirname(final), { recursive: true });
  await removeStalePartials(final);
  const temp = partialPath(final);
  const forget = onInterrupt(() => rmSync(temp, { recursive: true, force: true }));
  return {
    temp,
    publish: async () => {
      await checkOutput(final);
      await publishPartial(temp, final);
      forget();
    },
    discard: async () => {
      await rm(temp, { recursive: true, force: true });
      forget();
    },
  };
}

/** Every file costs a block of slack on most file systems; folders one block each. */
const PER_ENTRY = 4096;

/** Refuses up front, with the numbers, when the output's file system cannot hold the cache. */
export async function ensureSpace(output: string, bytes: number, entries: number): Promise<void> {
  const dir = dirname(resolve(output));
  const need = bytes + entries * PER_ENTRY + 1024 * 1024;
  const st = await statfs(dir);
  const free = st.bavail * st.bsize;
  if (free < need)
    throw new Error(
      `not enough space in ${printable(dir)}: the image cache needs ${formatBytes(need)}, ${formatBytes(free)} free; free some space or choose another -o`,
    );
}
