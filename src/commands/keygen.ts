import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { generateSigningKeys } from '../bundle/signature.js';
import { UsageError } from './errors.js';
import { printErr } from '../ui/output.js';

interface KeygenArgs {
  output: string;
  force: boolean;
}

export const command = 'keygen';
export const describe = 'Write an Ed25519 key pair for signing bundles (private key mode 0600)';

export function builder(y: Argv): Argv<KeygenArgs> {
  return y
    .option('output', {
      alias: 'o',
      type: 'string',
      default: 'airgap-bundle',
      describe: 'Key file prefix: PREFIX.key (private) and PREFIX.pub (public)',
    })
    .option('force', { type: 'boolean', default: false, describe: 'Overwrite existing key files' })
    .example(
      '$0 keygen -o release',
      'release.key stays on the connected side; release.pub travels to the isolated side separately',
    )
    .epilog(
      'Sign with: export --sign-key PREFIX.key. Check with: verify/import --public-key PREFIX.pub.',
    ) as unknown as Argv<KeygenArgs>;
}

export async function handler(argv: ArgumentsCamelCase<KeygenArgs>): Promise<void> {
  const priv = `${argv.output}.key`;
  const pub = `${argv.output}.pub`;
  if (!argv.force && (existsSync(priv) || existsSync(pub)))
    throw new UsageError(`${priv} or ${pub} exists; pass --force to overwrite`);
  const keys = generateSigningKeys();
  await writeFile(priv, keys.privatePem, { mode: 0o600 });
  await writeFile(pub, keys.publicPem, { mode: 0o644 });
  printErr(`wrote ${priv} (private, mode 0600) and ${pub} (public); key id ${keys.keyId}\n`);
}
