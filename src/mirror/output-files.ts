import { mkdir, open, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';

/** A path built from bundle data would leave the output folder: nothing is written. */
export class OutputPathError extends Error {
  override name = 'OutputPathError';
}

/** A folder under the output is a link to elsewhere: the user's tree, not the bundle, is at fault. */
export class OutputLinkError extends UserInputError {
  override name = 'OutputLinkError';
}

function isInside(root: string, path: string): boolean {
  const prefix = root.endsWith(sep) ? root : `${root}${sep}`;
  return path.startsWith(prefix);
}

/**
 * `root/parts…`, resolved, refused unless it lies strictly inside `root`. The
 * parts come from the bundle (registry names): `..`, an absolute path or a
 * separator must not carry a write elsewhere, whatever validated them before.
 */
export function containedPath(root: string, ...parts: string[]): string {
  const base = resolve(root);
  const full = resolve(base, ...parts);
  if (!isInside(base, full))
    throw new OutputPathError(
      `"${printable(join(...parts), 120)}" would be written outside ${printable(root)}; nothing was written`,
    );
  return full;
}

/**
 * Creates `folder` (which `containedPath` checked against `root`) and checks
 * again once it exists, with links resolved: a link already inside `root`
 * must not lead the write out of it either.
 */
export async function makeContainedFolder(root: string, folder: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  const [realRoot, realFolder] = await Promise.all([realpath(root), realpath(folder)]);
  if (realFolder !== realRoot && !isInside(realRoot, realFolder)) {
    throw new OutputLinkError(
      `${printable(folder)} leads outside ${printable(root)} through a link; remove the link or choose another -o`,
    );
  }
}

/**
 * Writes `content` to `path` atomically: into a hidden temporary file beside it,
 * flushed to disk, then renamed over the final name. A reader of `path` sees the
 * old file or the whole new one, never a part; a failure leaves no temporary.
 */
export async function writeFileAtomic(path: string, content: string, mode: number): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.partial-${process.pid}`);
  // A temporary left by a killed run with the same pid is stale: replace it. `wx` never follows a link.
  await rm(temporary, { force: true });
  try {
    const file = await open(temporary, 'wx', mode);
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}
