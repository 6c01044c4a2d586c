import { mkdir, realpath } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
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
