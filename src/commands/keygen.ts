import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { generateSigningKeys } from '../bundle/signature.js';
import { UsageError } from './errors.js';
import { printErr } from '../ui/output.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { printable } from '../util/text.js';

interface KeygenArgs {
  output: string;
  force: boolean;
  type: 'ed25519' | 'ecdsa-p256';
}

export const command = 'keygen';
export const describe =
  'Write a key pair: Ed25519 to sign bundles, or ECDSA P-256 to countersign images (private key mode 0600)';

export function builder(y: Argv): Argv<KeygenArgs> {
  return y
    .option('output', {
      alias: 'o',
      type: 'string',
      default: 'airgap-bundle',
      describe: 'Key file prefix: PREFIX.key (private) and PREFIX.pub (public)',
    })
    .option('force', { type: 'boolean', default: false, describe: 'Overwrite existing key files' })
    .option('type', {
      choices: ['ed25519', 'ecdsa-p256'] as const,
      default: 'ed25519' as const,
      describe:
        'ed25519: sign bundles (export --sign-key). ecdsa-p256: countersign images (import --countersign-key), a PKIX public key Talos and cosign take',
    })
    .example(
      '$0 keygen -o release',
      'release.key stays on the connected side; release.pub travels to the isolated side separately',
    )
    .example(
      '$0 keygen --type ecdsa-p256 -o cluster',
      'cluster.key countersigns at import; cluster.pub goes into the Talos ImageVerificationConfig',
    )
    .epilog(
      'Ed25519: sign with export --sign-key PREFIX.key, check with verify/import --public-key PREFIX.pub. ECDSA P-256: countersign with import --countersign-key PREFIX.key; nodes check with a publicKey rule holding PREFIX.pub.',
    ) as unknown as Argv<KeygenArgs>;
}

export async function handler(argv: ArgumentsCamelCase<KeygenArgs>): Promise<void> {
  const priv = `${argv.output}.key`;
  const pub = `${argv.output}.pub`;
  if (!argv.force && (existsSync(priv) || existsSync(pub)))
    throw new UsageError(`${priv} or ${pub} exists; pass --force to overwrite`);
  const keys = argv.type === 'ecdsa-p256' ? ecdsaKeys() : generateSigningKeys();
  await writeFileAtomic(priv, keys.privatePem, 0o600);
  await writeFileAtomic(pub, keys.publicPem, 0o644);
  printErr(`wrote ${printable(priv)} (private, mode 0600) and ${printable(pub)} (public); key id ${keys.keyId}\n`);
}

/** ECDSA P-256: PKCS#8 private key, PKIX (BEGIN PUBLIC KEY) public key, as cosign and Talos read them. */
function ecdsaKeys(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: `sha256:${createHash('sha256').update(der).digest('hex')}`,
  };
}
