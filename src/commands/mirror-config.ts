import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { readMetadata } from '../bundle/reader.js';
import { containerdHosts } from '../mirror/containerd.js';
import { k3sRegistries } from '../mirror/k3s.js';
import { checkMirrorOptions, MirrorConfigError, planMirrors, type MirrorOptions } from '../mirror/plan.js';
import { talosMultiDoc, talosPatch } from '../mirror/talos.js';
import { parseReference } from '../reference/reference.js';
import { UsageError } from './errors.js';
import { explicitCredential } from './target-options.js';

const FORMATS = ['talos', 'talos-multidoc', 'containerd', 'k3s'] as const;
type Format = (typeof FORMATS)[number];

interface MirrorConfigArgs {
  format: Format;
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
  output?: string;
}

export const command = 'mirror-config';
export const describe = 'Write the cluster-side registry mirror configuration (Talos, containerd, k3s) for an imported bundle';

export function builder(y: Argv): Argv<MirrorConfigArgs> {
  return y
    .option('format', { choices: FORMATS, default: 'talos' as Format, describe: 'talos: machine-config patch; talos-multidoc: Talos 1.12+ documents; containerd: certs.d/HOST/hosts.toml; k3s: registries.yaml (also RKE2)' })
    .option('endpoint', { type: 'string', demandOption: true, describe: 'The registry as the NODES reach it, with scheme: http://10.5.0.1:6000' })
    .option('bundle', { type: 'string', describe: 'Bundle the registry was filled from: names the source registries and checks for clashes' })
    .option('source-registry', { type: 'string', default: [] as string[], coerce: (v: string | string[]) => ([] as string[]).concat(v), describe: 'A source registry to mirror, without --bundle (repeatable)' })
    .option('keep-registry-host', { type: 'boolean', default: false, describe: 'The import used --keep-registry-host: one mirror per source registry' })
    .option('repo-prefix', { type: 'string', describe: 'The import used --repo-prefix P' })
    .option('skip-fallback', { type: 'boolean', default: true, describe: 'Never fall back to the upstream registries (--no-skip-fallback to allow it)' })
    .option('ca-file', { type: 'string', describe: 'PEM of the CA that signed the registry certificate (https endpoints)' })
    .option('insecure-skip-tls-verify', { type: 'boolean', default: false, describe: 'Nodes skip TLS verification of the registry (https endpoints; last resort)' })
    .option('username', { type: 'string', describe: 'Registry user for the nodes (password from --password-stdin)' })
    .option('password-stdin', { type: 'boolean', default: false, describe: 'Read the registry password from standard input' })
    .option('output', { alias: 'o', type: 'string', describe: 'Write to FILE (containerd: a folder receiving HOST/hosts.toml); default stdout' })
    .example('$0 mirror-config --endpoint http://10.5.0.1:6000 --bundle talos.tar', 'Talos patch for a registry filled with the default mapping')
    .example('$0 mirror-config --format talos-multidoc --endpoint https://registry.lan --ca-file ca.pem --bundle talos.tar', 'Talos 1.12+ documents with a private CA')
    .example('$0 mirror-config --format containerd --endpoint http://10.5.0.1:6000 --keep-registry-host --bundle b.tar -o certs.d', 'containerd hosts.toml per registry')
    .example('$0 mirror-config --format k3s --endpoint http://10.5.0.1:6000 --bundle b.tar -o registries.yaml', 'k3s / RKE2 registries.yaml')
    .epilog('Refuses an endpoint without scheme, TLS options on an http:// endpoint, and one "*" mirror when the bundle holds the same repository path under two registries; warns about loopback endpoints.') as unknown as Argv<MirrorConfigArgs>;
}

export async function handler(argv: ArgumentsCamelCase<MirrorConfigArgs>): Promise<void> {
  const repositories: Array<{ registry: string; repository: string }> = [];
  if (argv.bundle) for (const im of (await readMetadata(argv.bundle)).images) repositories.push({ registry: im.registry, repository: im.repository });
  for (const r of argv['source-registry']) {
    try {
      repositories.push({ registry: parseReference(`${r}/x`).registry, repository: '' });
    } catch {
      throw new UsageError(`--source-registry "${r}" is not a registry host`);
    }
  }
  let caPem: string | undefined;
  if (argv['ca-file']) {
    try {
      caPem = await readFile(argv['ca-file'], 'utf8');
    } catch {
      throw new UsageError(`cannot read --ca-file ${argv['ca-file']}`);
    }
    if (!caPem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca-file ${argv['ca-file']} holds no PEM certificate`);
  }
  const auth = (await explicitCredential(argv, ''))?.credential;
  const options: MirrorOptions = {
    endpoint: argv.endpoint,
    registries: [...new Set(repositories.map((r) => r.registry))],
    keepRegistryHost: argv['keep-registry-host'],
    ...(argv['repo-prefix'] ? { repoPrefix: argv['repo-prefix'] } : {}),
    skipFallback: argv['skip-fallback'],
    ...(caPem ? { caPem } : {}),
    insecureSkipVerify: argv['insecure-skip-tls-verify'],
    ...(auth ? { auth } : {}),
  };
  const { errors, warnings } = checkMirrorOptions(options, repositories.filter((r) => r.repository !== ''));
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  if (errors.length > 0) throw new UsageError(errors.join('\n'));
  let plan;
  try {
    plan = planMirrors(options);
  } catch (err) {
    if (err instanceof MirrorConfigError) throw new UsageError(err.message);
    throw err;
  }

  if (argv.format === 'containerd') {
    const hosts = containerdHosts(plan);
    if (argv.output) {
      for (const h of hosts) {
        await mkdir(join(argv.output, h.namespace), { recursive: true });
        for (const [name, content] of Object.entries(h.files)) await writeFile(join(argv.output, h.namespace, name), content, { mode: 0o644 });
      }
      process.stderr.write(`wrote ${hosts.map((h) => join(argv.output!, h.namespace, 'hosts.toml')).join(', ')}; copy the folders into containerd's config_path (e.g. /etc/containerd/certs.d)\n`);
      return;
    }
    process.stdout.write(hosts.map((h) => Object.entries(h.files).map(([n, c]) => `# ---- ${h.namespace}/${n}\n${c}`).join('')).join('\n'));
    return;
  }
  const text = argv.format === 'talos' ? talosPatch(plan) : argv.format === 'talos-multidoc' ? talosMultiDoc(plan) : k3sRegistries(plan);
  if (argv.output) {
    // Credentials may be inside: readable by the owner only.
    await writeFile(argv.output, text, { mode: options.auth ? 0o600 : 0o644 });
    process.stderr.write(`wrote ${argv.output}\n`);
  } else process.stdout.write(text);
}
