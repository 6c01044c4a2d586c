import { isSea } from 'node:sea';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSidecar } from '../bundle/sidecar.js';
import { readSmallRegularFile, SmallFileError } from '../util/small-file.js';
import { UserInputError } from '../util/user-input.js';
import { elfMachineOf, MACHINES, type ToolArch } from './elf.js';

/**
 * Where the executable for the isolated side comes from, found before an
 * export downloads anything: the running executable itself (when this is one,
 * for its own CPU), an executable for the other CPU beside it, or the files
 * `npm run package` wrote into dist/ of this checkout.
 */
export interface ToolSource {
  path: string;
  arch: ToolArch;
  /** From the `.sha256` beside it, when there is one: the copy is checked against it. */
  sha256?: string;
}

export const TOOL_ARCHES = Object.keys(MACHINES) as ToolArch[];

/** The name the executable for `arch` has in dist/ and on the stick. */
export function toolFileName(arch: ToolArch): string {
  return `airgap-bundle-linux-${arch}`;
}

/** `--tool-arch`, or the CPU this runs on; refused when that is neither. */
export function toolArch(asked: string | undefined): ToolArch {
  const arch = asked ?? process.arch;
  if ((TOOL_ARCHES as string[]).includes(arch)) return arch as ToolArch;
  throw new UserInputError(`no airgap-bundle executable is built for ${arch}: pass --tool-arch x64 or arm64`);
}

/** The executable for `arch`, or a UserInputError saying how to get one. */
export async function locateTool(arch: ToolArch): Promise<ToolSource> {
  if (isSea()) {
    if (arch === process.arch) return { path: process.execPath, arch };
    return checked(join(dirname(process.execPath), toolFileName(arch)), arch, () => besideHint(arch));
  }
  // dist/tool-copy/locate.js (or src/tool-copy/locate.ts): the checkout is two folders up.
  const root = fileURLToPath(new URL('../../', import.meta.url));
  return checked(join(root, 'dist', toolFileName(arch)), arch, () => packageHint(arch, root));
}

function packageHint(arch: ToolArch, root: string): string {
  return `no airgap-bundle executable for linux-${arch} at hand: run \`npm run package\` in ${root} (it writes dist/${toolFileName(arch)}), then rerun`;
}

function besideHint(arch: ToolArch): string {
  return `this executable is for linux-${process.arch}; for linux-${arch} put ${toolFileName(arch)} (from \`npm run package\`) beside it, then rerun`;
}

/** `path` when it is an executable for `arch`, with the checksum its `.sha256` names. */
async function checked(path: string, arch: ToolArch, hint: () => string): Promise<ToolSource> {
  let machine: number | undefined;
  try {
    machine = await elfMachineOf(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserInputError(hint());
    throw new UserInputError(`${path} cannot be read (${(err as Error).message}): ${hint()}`);
  }
  if (machine !== MACHINES[arch]) throw new UserInputError(`${path} is not an executable for linux-${arch}: ${hint()}`);
  const sha256 = await sidecarSha256(path);
  return { path, arch, ...(sha256 ? { sha256 } : {}) };
}

/** The checksum in `path.sha256`, if that file is there; one that names another file is refused. */
async function sidecarSha256(path: string): Promise<string | undefined> {
  let text: string | undefined;
  try {
    text = await readSmallRegularFile(`${path}.sha256`, 4096);
  } catch (err) {
    if (err instanceof SmallFileError) throw new UserInputError(`${path}.sha256 ${err.message}`);
    throw err;
  }
  if (text === undefined) return undefined;
  const parsed = parseSidecar(text);
  if (!parsed || parsed.fileName !== basename(path))
    throw new UserInputError(
      `${path}.sha256 is not the checksum of ${basename(path)}: rebuild with \`npm run package\``,
    );
  return parsed.sha256;
}
