// Runs `talos-patch` the way src/cli.ts runs a command (strict options, exit 2 for a user's
// mistake, 3 for a damaged bundle), for a checkout whose CLI does not list the command yet.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import * as talosPatch from '../../src/commands/talos-patch.js';
import { BundleFormatError } from '../../src/bundle/reader.js';
import { UserInputError } from '../../src/util/user-input.js';

function exitCodeOf(err: unknown): number {
  if (err instanceof UserInputError) return 2;
  if (err instanceof BundleFormatError) return 3;
  return 1;
}

yargs(hideBin(process.argv))
  .command(talosPatch as unknown as CommandModule)
  .strict()
  .fail((msg, err) => {
    throw err ?? new UserInputError(msg);
  })
  .parseAsync()
  .then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`airgap-bundle: error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(exitCodeOf(err));
    },
  );
