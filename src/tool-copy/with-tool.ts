import { dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import { loadManual } from '../docs/manual.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isDiskFull } from '../util/disk-full.js';
import { formatBytes } from '../util/bytes.js';
import { UserInputError } from '../util/user-input.js';
import { copyTool, type CopiedTool } from './copy.js';
import { locateTool, toolArch, TOOL_ARCHES } from './locate.js';

export interface ToolCopyArgs {
  'with-tool': boolean;
  'tool-arch'?: string;
}

/** `export --with-tool [--tool-arch x64|arm64]`. */
export function toolCopyOptions<T>(y: Argv<T>) {
  return y
    .option('with-tool', {
      type: 'boolean',
      default: false,
      describe:
        'Also put the airgap-bundle executable for the isolated side (and its .sha256) and the manual (airgap-bundle-docs.html) next to the bundle: it needs nothing installed there',
    })
    .option('tool-arch', {
      type: 'string',
      choices: TOOL_ARCHES,
      describe: "The isolated side's CPU for --with-tool (default: this machine's)",
    });
}

/** The manual's name beside the executable: every page of docs/ in one HTML file. */
export const MANUAL_FILE_NAME = 'airgap-bundle-docs.html';

/** What was copied beside the bundle, for the report: the executable and the manual. */
export type ToolCopyReport = CopiedTool & { arch: string; manual: string };

/**
 * Finds the executable `--with-tool` asks for, before anything is downloaded
 * (a UserInputError saying how to get one when there is none), and returns the
 * step that copies it next to the written bundle; undefined without the option.
 */
export async function prepareToolCopy(
  args: ToolCopyArgs,
  reporter: { info(message: string): void },
): Promise<((bundle: string) => Promise<ToolCopyReport>) | undefined> {
  if (!args['with-tool']) {
    if (args['tool-arch'] !== undefined) throw new UserInputError('--tool-arch goes with --with-tool');
    return undefined;
  }
  const source = await locateTool(toolArch(args['tool-arch']));
  const { html } = await loadManual();
  return async (bundle) => {
    // A volume set is written in one folder: the executable lands beside the first volume.
    const dir = dirname(bundle);
    const tool = await copyTool(source, dir);
    const manual = join(dir, MANUAL_FILE_NAME);
    await writeManual(manual, html);
    const copied = { ...tool, arch: `linux-${source.arch}`, manual };
    reporter.info(
      `wrote ${copied.path} (${formatBytes(copied.bytes)}, ${copied.arch}), checksum ${copied.sidecar}: sha256 ${copied.sha256}; the manual: ${manual}`,
    );
    return copied;
  };
}

/** The manual beside the executable, written whole; a full disk says what is already complete. */
async function writeManual(path: string, html: string): Promise<void> {
  try {
    await writeFileAtomic(path, html, 0o644);
  } catch (err) {
    if (isDiskFull(err))
      throw new Error(
        `no space left for ${path} (partial file removed); the bundle and the executable are complete: free space and rerun, or read the manual with \`airgap-bundle help\``,
        { cause: err },
      );
    throw err;
  }
}
