import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { BundleFormatError, readMetadata } from '../bundle/reader.js';
import {
  checkMirrorOptions,
  invalidRegistries,
  planMirrors,
  type MirrorOptions,
  type MirrorPlan,
} from '../mirror/plan.js';
import { isRegistryHost } from '../reference/mapping.js';
import { parseReference } from '../reference/reference.js';
import { printErr } from '../ui/output.js';
import { printable } from '../util/text.js';
import { UsageError } from './errors.js';
import { explicitCredential, givenMapping } from './target-options.js';

/**
 * The options that say where nodes pull from and how the registry was
 * filled, shared by every command that writes node-side mirror configuration
 * (`mirror-config`, `talos-patch`), so both plan the same mirrors.
 */
export interface MirrorArgs {
  endpoint: string;
  bundle?: string;
  'source-registry': string[];
  'keep-registry-host': boolean;
  'repo-prefix'?: string;
  'skip-fallback': boolean;
  'ca-file'?: string;
  'insecure-skip-tls-verify': boolean;
  username?: string;
  'password-stdin': boolean;
  'image-verification'?: string;
}

export function mirrorOptions(y: Argv): Argv {
  return y
    .option('endpoint', {
      type: 'string',
      demandOption: true,
      describe: 'The registry as the NODES reach it, with scheme: http://10.5.0.1:6000',
    })
    .option('bundle', {
      type: 'string',
      describe: 'Bundle the registry was filled from: names the source registries and checks for clashes',
    })
    .option('source-registry', {
      type: 'string',
      default: [] as string[],
      coerce: (v: string | string[]) => ([] as string[]).concat(v),
      describe: 'A source registry to mirror, without --bundle (repeatable)',
    })
    .option('keep-registry-host', {
      type: 'boolean',
      default: false,
      describe: 'The import used --keep-registry-host: one mirror per source registry',
    })
    .option('repo-prefix', { type: 'string', describe: 'The import used --repo-prefix P' })
    .option('skip-fallback', {
      type: 'boolean',
      default: true,
      describe: 'Never fall back to the upstream registries (--no-skip-fallback to allow it)',
    })
    .option('ca-file', {
      type: 'string',
      describe: 'PEM of the CA that signed the registry certificate (https endpoints)',
    })
    .option('insecure-skip-tls-verify', {
      type: 'boolean',
      default: false,
      describe: 'Nodes skip TLS verification of the registry (https endpoints; last resort)',
    })
    .option('username', { type: 'string', describe: 'Registry user for the nodes (password from --password-stdin)' })
    .option('password-stdin', {
      type: 'boolean',
      default: false,
      describe: 'Read the registry password from standard input',
    })
    .option('image-verification', {
      type: 'string',
      describe:
        "Add Talos's ImageVerificationConfig (v1.13+): a publicKey rule per source registry holding this PEM public key (the key import --countersign-key signed with)",
    });
}

/** Source registries and repositories of the bundle's images; a registry that is no host[:port] is a forged bundle. */
async function bundleRepositories(bundle: string): Promise<Array<{ registry: string; repository: string }>> {
  const images = (await readMetadata(bundle)).images;
  const invalid = invalidRegistries(images.map((im) => im.registry));
  if (invalid.length > 0) {
    throw new BundleFormatError(
      `${printable(bundle)}: the metadata names source registries that are not host[:port] (${invalid.slice(0, 5).join(', ')}): the bundle is damaged or forged; nothing was written`,
    );
  }
  return images.map((im) => ({ registry: im.registry, repository: im.repository }));
}

/** `--source-registry` values as normalised hosts (`index.docker.io` → `docker.io`). */
function sourceRegistries(values: string[]): Array<{ registry: string; repository: string }> {
  return values.map((value) => {
    try {
      // A host is what stays the registry of `HOST/x/y` and leaves the path alone.
      const ref = parseReference(`${value}/x/y`);
      if (ref.repository === 'x/y' && isRegistryHost(ref.registry)) return { registry: ref.registry, repository: '' };
    } catch {
      // reported below
    }
    throw new UsageError(`--source-registry "${printable(value)}" is not a registry host[:port]`);
  });
}

async function readCaFile(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read --ca-file ${printable(file)}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`--ca-file ${printable(file)} holds no PEM certificate`);
  return pem;
}

/**
 * The mirrors of the command line. Bundle data first: a forged bundle is
 * refused (exit 3) before anything else is looked at; then every option
 * mistake at once (exit 2), the warnings printed.
 */
export async function mirrorPlanFrom(argv: MirrorArgs): Promise<MirrorPlan> {
  const repositories = [
    ...(argv.bundle ? await bundleRepositories(argv.bundle) : []),
    ...sourceRegistries(argv['source-registry']),
  ];
  const caPem = await readCaFile(argv['ca-file']);
  const auth = (await explicitCredential(argv, ''))?.credential;
  const options: MirrorOptions = {
    endpoint: argv.endpoint,
    registries: [...new Set(repositories.map((r) => r.registry))],
    ...givenMapping(argv),
    skipFallback: argv['skip-fallback'],
    ...(caPem ? { caPem } : {}),
    insecureSkipVerify: argv['insecure-skip-tls-verify'],
    ...(auth ? { auth } : {}),
  };
  const { errors, warnings } = checkMirrorOptions(
    options,
    repositories.filter((r) => r.repository !== ''),
  );
  for (const w of warnings) printErr(`warning: ${w}\n`);
  if (errors.length > 0) throw new UsageError(errors.join('\n'));
  return planMirrors(options);
}
