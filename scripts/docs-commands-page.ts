/**
 * `docs/commands.md` from the CLI's own `--help` texts: the command names are read from the
 * top-level help (so a new command appears by itself), and each command's help is quoted whole.
 * Pure: `scripts/docs-commands.ts` runs the CLI and writes the file; the e2e docs test runs the CLI
 * under test and compares.
 */

/** The commands the top-level `--help` lists under `Commands:`, in its order. */
export function commandNames(topLevelHelp: string): string[] {
  const section = /^Commands:\n([\s\S]*?)(?:\n\n|(?![\s\S]))/m.exec(topLevelHelp);
  if (!section) throw new Error('the top-level --help lists no "Commands:" section');
  const names = [...section[1]!.matchAll(/^ {2}airgap-bundle ([a-z][a-z0-9-]*)/gm)].map((m) => m[1]!);
  if (names.length === 0) throw new Error('the top-level --help lists no command');
  return names;
}

/** The page: the top-level help, then one section per command with its help as printed. */
export function commandsPage(topLevelHelp: string, commands: Array<{ name: string; help: string }>): string {
  const sections = commands.map((c) => `## ${c.name}\n\n${fenced(c.help)}`);
  return [
    '# Commands and options',
    '',
    "<!-- Written by `npm run docs:commands` from the CLI's --help; edit the commands, not this file. -->",
    '',
    'Every command with every option, as `airgap-bundle COMMAND --help` prints them. How each command',
    'works is in [guide.md](guide.md) and [talos.md](talos.md); exit codes in the',
    '[README](../README.md#exit-codes).',
    '',
    `Commands: ${commands.map((c) => `[${c.name}](#${c.name})`).join(', ')}.`,
    '',
    '## airgap-bundle --help',
    '',
    fenced(topLevelHelp),
    ...sections.map((s) => `${s}`),
  ]
    .join('\n')
    .replace(/\n*$/, '\n');
}

/** `text` in a fenced block, trailing spaces cut (yargs pads columns). */
function fenced(text: string): string {
  const body = text
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
    .trim();
  if (body.includes('```')) throw new Error('a --help text holds ```: it cannot be fenced');
  return `\`\`\`text\n${body}\n\`\`\`\n`;
}
