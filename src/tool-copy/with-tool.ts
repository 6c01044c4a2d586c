import { dirname } from 'node:path';
import type { Argv } from 'yargs';
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
        'Also put the airgap-bundle executable for the isolated side (and its .sha256) next to the bundle: it needs nothing installed there',
    })
    .option('tool-arch', {
      type: 'string',
      choices: TOOL_ARCHES,
      describe: "The isolated side's CPU for --with-tool (default: this machine's)",
    });
}

/** What was copied beside the bundle, for the report. */
export type ToolCopyReport = CopiedTool & { arch: string };

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
  return async (bundle) => {
    // A volume set is written in one folder: the executable lands beside the first volume.
    const copied = { ...(await copyTool(source, dirname(bundle))), arch: `linux-${source.arch}` };
    reporter.info(
      `wrote ${copied.path} (${formatBytes(copied.bytes)}, ${copied.arch}), checksum ${copied.sidecar}: sha256 ${copied.sha256}`,
    );
    return copied;
  };
}
