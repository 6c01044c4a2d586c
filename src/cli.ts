#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { CheckFailed, ExitCode, UsageError } from './commands/errors.js';
import { TOOL, versionReport } from './version.js';
import { BundleFormatError } from './bundle/reader.js';
import { UserInputError } from './util/user-input.js';
import { flushStandardStreams, printErr, watchStandardStreams } from './ui/output.js';
import { printable } from './util/text.js';

/** A command loader, its argument types erased as yargs's list of commands takes them. */
function lazy<U>(load: () => Promise<CommandModule<object, U>>): () => Promise<CommandModule> {
  return load as unknown as () => Promise<CommandModule>;
}

/**
 * Each command's module, loaded on demand: a run loads the code of the command it
 * names and nothing else (a no-op import or a `--version` is mostly start-up, and
 * start-up is mostly reading modules). Listed in the order `--help` shows them.
 */
const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  images: lazy(() => import('./commands/images.js')),
  export: lazy(() => import('./commands/export.js')),
  verify: lazy(() => import('./commands/verify.js')),
  import: lazy(() => import('./commands/import.js')),
  serve: lazy(() => import('./commands/serve.js')),
  'talos-cache': lazy(() => import('./commands/talos-cache.js')),
  files: lazy(() => import('./commands/files.js')),
  inspect: lazy(() => import('./commands/inspect.js')),
  'mirror-config': lazy(() => import('./commands/mirror-config.js')),
  'talos-patch': lazy(() => import('./commands/talos-patch.js')),
  inventory: lazy(() => import('./commands/inventory.js')),
  keygen: lazy(() => import('./commands/keygen.js')),
  help: lazy(() => import('./commands/help.js')),
  completion: lazy(() => import('./commands/completion.js')),
};

/** The option yargs' completion scripts call the tool with: `--get-yargs-completions $0 WORDS…`. */
const COMPLETION_REQUEST = '--get-yargs-completions';

/**
 * The command the arguments name (the first word that is not an option), alone;
 * every command when there is none or it is not one of ours, so that `--help`
 * lists them all and a typo gets its suggestion.
 */
async function commandsFor(args: readonly string[]): Promise<CommandModule[]> {
  const named = commandWord(args);
  const load = named !== undefined && Object.hasOwn(COMMANDS, named) ? [COMMANDS[named]!] : Object.values(COMMANDS);
  return Promise.all(load.map((l) => l()));
}

/**
 * The word naming the command. A completion request carries the words typed so far after the tool's
 * own name: the command is among them only once completed (a word followed by another), else every
 * command is loaded so that yargs can offer their names.
 */
function commandWord(args: readonly string[]): string | undefined {
  if (args[0] !== COMPLETION_REQUEST) return args.find((a) => !a.startsWith('-'));
  const typed = args.slice(2, -1);
  return typed.find((a) => !a.startsWith('-'));
}

/** Set when writing stdout or stderr failed for another reason than a reader that left. */
let outputLost: Error | undefined;

/** Longest error line printed: bundle strings are bounded where formatted, this bounds the sum. */
const MAX_ERROR_LENGTH = 4096;

/** Arguments yargs refused: its message (which may span lines) and a pointer to --help. */
class ArgumentsRejected extends UsageError {
  override name = 'ArgumentsRejected';
}

/**
 * Leaves once stdout and stderr are written out, so a piped `--json` report is
 * complete and the error line arrives. Exiting explicitly, rather than waiting
 * for the event loop to empty, also ends a run that left a handle open (a
 * keep-alive socket, a worker) instead of hanging on it.
 */
async function exit(code: number): Promise<never> {
  // The outcome is decided and reported: a leftover handle failing while the output drains
  // must not turn it into a crash with another exit code.
  process.on('uncaughtException', reportLateError);
  process.on('unhandledRejection', reportLateError);
  await flushStandardStreams();
  if (outputLost && code === ExitCode.ok) {
    // The result was not delivered: a success would be a lie.
    printErr(
      `airgap-bundle: error: the output could not be written (${printable(outputLost.message)}); free space or fix the destination, then rerun\n`,
    );
    await flushStandardStreams();
    process.exit(ExitCode.failure);
  }
  process.exit(code);
}

function reportLateError(err: unknown): void {
  if (process.env.AIRGAP_BUNDLE_DEBUG)
    printErr(`airgap-bundle: after the result: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}

function exitCodeOf(err: unknown): number {
  if (err instanceof CheckFailed) return err.exitCode;
  if (err instanceof UserInputError) return ExitCode.usage;
  if (err instanceof BundleFormatError) return ExitCode.damaged;
  return ExitCode.failure;
}

/**
 * One line per failure, no stack: the message names the thing and what to do.
 * Messages may quote bundle or registry strings: control characters are escaped
 * and the line is bounded. Line breaks of a message that lists several
 * problems are kept; each listed string was escaped where it was formatted.
 */
async function fail(err: unknown): Promise<never> {
  if (err instanceof ArgumentsRejected) {
    printErr(`airgap-bundle: error: ${err.message}\nRun with --help for usage.\n`);
  } else {
    const message = printableMessage(err instanceof Error ? err.message : String(err));
    printErr(err instanceof CheckFailed ? `airgap-bundle: ${message}\n` : `airgap-bundle: error: ${message}\n`);
    if (process.env.AIRGAP_BUNDLE_DEBUG && err instanceof Error && err.stack) printErr(`${err.stack}\n`);
  }
  return exit(exitCodeOf(err));
}

/** Every line of `message` escaped, the whole bounded. */
function printableMessage(message: string): string {
  const text = message
    .split('\n', 100)
    .map((line) => printable(line, MAX_ERROR_LENGTH))
    .join('\n');
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}

/**
 * `--version --json` and nothing else: yargs' own --version prints the bare version and knows
 * no --json at the top level, so this one is answered before yargs sees the arguments.
 */
function asksVersionJson(args: readonly string[]): boolean {
  return args.length === 2 && args.includes('--version') && args.includes('--json');
}

async function main(): Promise<void> {
  const args = hideBin(process.argv);
  if (asksVersionJson(args)) {
    process.stdout.write(`${JSON.stringify(await versionReport())}\n`);
    return;
  }
  // yargs takes a last word `help` for --help: `help` alone lists the manual's pages instead.
  if (args.length === 1 && args[0] === 'help') {
    await (await import('./commands/help.js')).printPageList();
    return;
  }
  await yargs(args)
    .scriptName('airgap-bundle')
    .usage(
      '$0 <command> [options]\n\nCarry container images across an air gap: export them from registries into one checksummed bundle, verify it offline, import it into an isolated registry.',
    )
    .command(await commandsFor(args))
    .demandCommand(1, `name a command: ${Object.keys(COMMANDS).join(', ')}`)
    .strict()
    .recommendCommands()
    .version(TOOL.version)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      // Thrown, so that main() ends through fail() and the output is flushed.
      throw err ?? new ArgumentsRejected(msg);
    })
    .parseAsync();
}

watchStandardStreams((err) => (outputLost ??= err));
main().then(() => exit(ExitCode.ok), fail);
