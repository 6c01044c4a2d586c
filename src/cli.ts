#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import * as exportCommand from './commands/export.js';
import * as imagesCommand from './commands/images.js';
import * as importCommand from './commands/import.js';
import * as inspectCommand from './commands/inspect.js';
import * as inventoryCommand from './commands/inventory.js';
import * as keygenCommand from './commands/keygen.js';
import * as mirrorConfigCommand from './commands/mirror-config.js';
import * as verifyCommand from './commands/verify.js';
import { CheckFailed, ExitCode, UsageError } from './commands/errors.js';
import { TOOL } from './version.js';
import { BundleFormatError } from './bundle/reader.js';

/** One line per failure, no stack: the message names the thing and what to do. */
function fail(err: unknown): never {
  if (err instanceof CheckFailed) {
    process.stderr.write(`airgap-bundle: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`airgap-bundle: error: ${message}\n`);
  if (process.env.AIRGAP_BUNDLE_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof UsageError ? ExitCode.usage : err instanceof BundleFormatError ? ExitCode.damaged : ExitCode.failure);
}

async function main(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('airgap-bundle')
    .usage('$0 <command> [options]\n\nCarry container images across an air gap: export them from registries into one checksummed bundle, verify it offline, import it into an isolated registry.')
    .command(imagesCommand)
    .command(exportCommand)
    .command(verifyCommand)
    .command(importCommand)
    .command(inspectCommand)
    .command(mirrorConfigCommand)
    .command(inventoryCommand)
    .command(keygenCommand)
    .demandCommand(1, 'name a command: images, export, verify, import, inspect, mirror-config, inventory, keygen')
    .strict()
    .recommendCommands()
    .version(TOOL.version)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) fail(err);
      process.stderr.write(`airgap-bundle: error: ${msg}\nRun with --help for usage.\n`);
      process.exit(ExitCode.usage);
    })
    .parseAsync();
}

main().catch(fail);
