import type { ArgumentsCamelCase, Argv } from 'yargs';
import { loadManual, type Manual } from '../docs/manual.js';
import { renderForTerminal } from '../docs/terminal.js';
import { printOut } from '../ui/output.js';
import { terminalSafe } from '../util/text.js';
import { UsageError } from './errors.js';

interface HelpArgs {
  topic?: string;
}

export const command = 'help [topic]';
export const describe = 'Print a page of the manual (docs/TOPIC.md) in the terminal; alone, list the pages';

export function builder(y: Argv): Argv<HelpArgs> {
  return y
    .positional('topic', {
      type: 'string',
      describe: 'The page: talos, security, commands, … (`help` alone lists them)',
    })
    .example('$0 help', 'The pages of the manual, one line each')
    .example('$0 help talos', 'The Talos page: lists by era, image cache, mirror styles by version')
    .example('$0 help security | less', 'Piped: plain text, no colour codes')
    .epilog(
      'The same pages are in airgap-bundle-docs.html, which export --with-tool writes beside the executable. Exit codes: 0 printed, 2 no such page.',
    ) as unknown as Argv<HelpArgs>;
}

export async function handler(argv: ArgumentsCamelCase<HelpArgs>): Promise<void> {
  if (argv.topic === undefined) return printPageList();
  const manual = await loadManual();
  const page = manual.pages.find((p) => p.name === argv.topic);
  if (!page)
    throw new UsageError(
      `no page "${argv.topic}" in the manual: pick one of ${manual.pages.map((p) => p.name).join(', ')}`,
    );
  // The page's own characters are escaped first; the only control sequences written are the colours added here.
  process.stdout.write(
    renderForTerminal(terminalSafe(page.markdown), {
      color: process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
      width: Math.min(process.stdout.columns || 100, 140),
    }),
  );
}

/** `help` alone: the pages of the manual. */
export async function printPageList(): Promise<void> {
  printOut(pageList(await loadManual()));
}

/** One line per page: its topic and its title, then how to read one. */
function pageList(manual: Manual): string {
  const width = Math.max(...manual.pages.map((p) => p.name.length));
  const lines = manual.pages.map((p) => `  ${p.name.padEnd(width)}  ${p.title}`);
  return `The manual (airgap-bundle help TOPIC):\n${lines.join('\n')}\n`;
}
