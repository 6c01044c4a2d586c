import type { ArgumentsCamelCase, Argv } from 'yargs';
import { readFile } from 'node:fs/promises';
import { endpointHost, endpointUrl, talosPatchFor } from '../serve/announce.js';
import { serveBundles, type Serving } from '../serve/serve.js';
import type { AccessRecord } from '../serve/server.js';
import { tlsFromFolder, TlsSetupError, type TlsMaterial } from '../serve/tls.js';
import { formatBytes } from '../util/bytes.js';
import { jsonText, printErr, printOut } from '../ui/output.js';
import { CheckFailed, ExitCode, UsageError } from './errors.js';
import { countersignKeyFrom, signatureOptions, signatureOptionsFrom, type SignatureArgs } from './signature-options.js';
import { SignaturePolicyRefusal } from '../signatures/errors.js';
import { outputOptions, type OutputArgs } from './output-options.js';
import { explicitCredential, mappingFrom } from './target-options.js';
import type { RepositoryMapping } from '../reference/mapping.js';

interface ServeArgs extends OutputArgs, SignatureArgs {
  'countersign-key'?: string;
  bundle: string[];
  listen: string;
  advertise: string[];
  'tls-cert'?: string;
  'tls-key'?: string;
  'tls-generate'?: string;
  username?: string;
  'password-stdin': boolean;
  'keep-registry-host': boolean;
  'repo-prefix'?: string;
  verify: boolean;
  'max-connections': number;
  grace: number;
}

export const command = 'serve <bundle..>';
export const describe = 'Serve bundles as a read-only registry, straight from the tar files: nothing to install';

export function builder(y: Argv): Argv<ServeArgs> {
  return signatureOptions(outputOptions(y))
    .option('countersign-key', {
      type: 'string',
      describe:
        "With --verify-signatures: serve every image the policy verified with the cluster's signature made with this key (made at start, held in memory), for Talos publicKey rules",
    })
    .positional('bundle', {
      type: 'string',
      array: true,
      demandOption: true,
      describe: 'Bundles to serve: one, a delta with its base, every volume of a set, or unrelated bundles',
    })
    .option('listen', {
      type: 'string',
      default: ':6000',
      describe: 'Address and port to listen on (HOST:PORT or :PORT)',
    })
    .option('advertise', {
      type: 'string',
      array: true,
      default: [],
      describe:
        'Names or addresses the nodes reach this server at (comma-separated or repeated): the endpoint printed, and the certificate names with --tls-generate',
    })
    .option('tls-cert', { type: 'string', describe: 'Serve HTTPS with this certificate (PEM; with --tls-key)' })
    .option('tls-key', { type: 'string', describe: 'Private key of --tls-cert (PEM)' })
    .option('tls-generate', {
      type: 'string',
      describe:
        'Serve HTTPS with a CA and server certificate kept in DIR: made on first start (for --advertise), reused after',
    })
    .option('username', {
      type: 'string',
      describe: 'Require basic auth with this user (password from --password-stdin)',
    })
    .option('password-stdin', { type: 'boolean', default: false, describe: 'Read the password from standard input' })
    .option('keep-registry-host', {
      type: 'boolean',
      default: false,
      describe:
        'Serve each image under its source registry host (ghcr.io/siderolabs/…), as import --keep-registry-host',
    })
    .option('repo-prefix', {
      type: 'string',
      describe: 'Serve every repository under PREFIX/, as import --repo-prefix',
    })
    .option('verify', { type: 'boolean', default: false, describe: 'Check every byte of every bundle before serving' })
    .option('max-connections', { type: 'number', default: 256, describe: 'Connections held open at once' })
    .option('grace', {
      type: 'number',
      default: 10,
      describe: 'Seconds responses under way may take to finish on Ctrl-C/SIGTERM',
    })
    .example('$0 serve talos-v1.9.tar --listen 0.0.0.0:6000', 'Serve one bundle over HTTP on port 6000')
    .example(
      '$0 serve base.tar delta.tar --listen 10.5.0.1:6000 --tls-generate ./serve-tls --advertise 10.5.0.1',
      'A delta with its base, over HTTPS with a generated CA (nodes trust serve-tls/ca.crt)',
    )
    .example('$0 serve talos.vol001.tar talos.vol002.tar talos.vol003.tar', 'Every volume of a set, served as one')
    .example(
      '$0 serve talos.tar --verify-signatures policy.yaml --countersign-key cluster.key',
      'Check every signature offline at start, and sign what passed for the cluster (Talos ImageVerificationConfig)',
    )
    .epilog(
      'Pull side of the OCI distribution API: manifests and blobs by tag or digest, Range, tags/list and _catalog with paging, the referrers API; every write is refused (405). ' +
        "Repositories are named as import names them (registry host dropped, so one '*' mirror serves all; containerd's ?ns= picks the registry when two share a path). " +
        'Every blob is hashed as it is served: a damaged one is cut off, never completed. One access-log line per request on stdout (--json: JSON lines, --quiet: none). ' +
        'Ctrl-C or SIGTERM stops accepting, lets responses finish (--grace), exits 0. Exit codes: 2 usage or bundles that cannot be served together, 3 damaged bundle, 5 an image fails the signature policy (--verify-signatures; nothing served), 1 other failure.',
    ) as unknown as Argv<ServeArgs>;
}

/** `HOST:PORT`, `:PORT`, `[v6]:PORT`. */
export function parseListen(text: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--listen "${text}": give HOST:PORT or :PORT (e.g. 0.0.0.0:6000)`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

function advertised(argv: ServeArgs): string[] {
  return argv.advertise
    .flatMap((a) => a.split(','))
    .map((a) => a.trim())
    .filter(Boolean);
}

async function tlsOptions(argv: ServeArgs, names: string[]): Promise<TlsMaterial | undefined> {
  const files = argv['tls-cert'] !== undefined || argv['tls-key'] !== undefined;
  if (files && argv['tls-generate'])
    throw new UsageError('give either --tls-cert/--tls-key or --tls-generate, not both');
  if (files) {
    if (!argv['tls-cert'] || !argv['tls-key']) throw new UsageError('--tls-cert and --tls-key go together');
    const read = (f: string) =>
      readFile(f, 'utf8').catch((e: Error) => {
        throw new TlsSetupError(`${f}: cannot read (${e.message})`);
      });
    return { cert: await read(argv['tls-cert']), key: await read(argv['tls-key']), caPem: '', written: [] };
  }
  if (!argv['tls-generate']) return undefined;
  if (names.length === 0)
    throw new UsageError(
      '--tls-generate needs --advertise HOST[,HOST…]: the names or addresses nodes reach this server at',
    );
  return tlsFromFolder(argv['tls-generate'], [...new Set([...names, 'localhost', '127.0.0.1'])]);
}

export async function handler(argv: ArgumentsCamelCase<ServeArgs>): Promise<void> {
  const listen = parseListen(argv.listen);
  const names = advertised(argv);
  const mapping = mappingFrom(argv);
  const auth = await explicitCredential(argv, 'serve');
  const tls = await tlsOptions(argv, names);
  const signatures = await signatureOptionsFrom(argv);
  const countersignKey = await countersignKeyFrom(argv, signatures);
  const serving = await serveBundles({
    bundles: argv.bundle,
    mapping,
    host: listen.host ?? '',
    port: listen.port,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    ...(auth ? { auth: auth.credential } : {}),
    maxConnections: argv['max-connections'],
    verifyFirst: argv.verify,
    ...(signatures ? { signatures } : {}),
    ...(countersignKey ? { countersignKey } : {}),
    onAccess: accessLogger(argv),
    warn: (line) => printErr(`airgap-bundle: warning: ${line}\n`),
  }).catch((err: unknown) => {
    if (err instanceof SignaturePolicyRefusal) throw new CheckFailed(err.message, ExitCode.unsigned);
    throw err;
  });
  announce(argv, serving, names, tls, mapping);
  await stopSignal();
  if (!argv.quiet && !argv.json) printErr('stopping: no new connections; letting responses under way finish\n');
  await serving.server.close(argv.grace * 1000);
}

function accessLogger(argv: ServeArgs): (r: AccessRecord) => void {
  if (argv.quiet) return () => undefined;
  if (argv.json) return (r) => printOut(`${jsonText({ time: new Date().toISOString(), ...r }, 0)}\n`);
  return (r) =>
    printOut(
      `${new Date().toISOString()} ${r.remote} ${r.method} ${r.path} ${r.status} ${r.bytes} ${r.ms}ms${r.complete ? '' : ' cut-short'}\n`,
    );
}

function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

function announce(
  argv: ServeArgs,
  s: Serving,
  names: string[],
  tls: TlsMaterial | undefined,
  mapping: RepositoryMapping,
) {
  const images = s.units.reduce((n, u) => n + u.metadata.images.length, 0);
  const bytes = [...s.content.blobs.values()].reduce((n, b) => n + b.size, 0);
  const host = endpointHost(s.server.address.address, names);
  const endpoint = endpointUrl(host, s.server.address.port, tls !== undefined);
  const registries = [...new Set(s.units.flatMap((u) => u.metadata.images.map((i) => i.registry)))].sort();
  if (argv.json) {
    printOut(
      `${jsonText({ event: 'listening', address: s.server.address, endpoint, images, repositories: s.content.names().length, bytes, startMs: Math.round(s.startMs), written: tls?.written ?? [], ...(s.signatures ? { signatures: s.signatures } : {}) }, 0)}\n`,
    );
    return;
  }
  const where = `${tls ? 'https' : 'http'} on ${s.server.address.address}:${s.server.address.port}`;
  printErr(
    `serving ${images} images in ${s.content.names().length} repositories (${formatBytes(bytes)}) from ${s.units.map((u) => u.label).join(', ')}, ${where}; ready in ${(s.startMs / 1000).toFixed(2)} s\n`,
  );
  if (s.signatures)
    printErr(
      `signatures: ${s.signatures.verified} of ${s.signatures.checked} images verified against the policy${s.signatures.countersigned ? `, ${s.signatures.countersigned} served countersigned` : ''}\n`,
    );
  if (argv.quiet) return;
  for (const f of tls?.written ?? []) printErr(`wrote ${f}\n`);
  if (names.length === 0 && /^(127\.|localhost$|::1$)/.test(host))
    printErr('(a loopback address: nodes cannot reach it; give --advertise with the address they use)\n');
  printErr(
    `\nPoint the nodes at ${endpoint}. Talos machine-config patch (talosctl … --config-patch @patch.yaml):\n\n` +
      talosPatchFor(endpoint, registries, mapping, tls?.caPem || undefined) +
      `\nFor containerd (hosts.toml) and k3s/RKE2 (registries.yaml): ${mirrorConfigLine(argv, endpoint, tls)}\n\n`,
  );
}

/** The mirror-config command for the other formats; a '*' mirror needs no bundle, per-registry mirrors do. */
function mirrorConfigLine(argv: ServeArgs, endpoint: string, tls: TlsMaterial | undefined): string {
  const perRegistry = argv['keep-registry-host'] ? ` --keep-registry-host --bundle ${argv.bundle[0]}` : '';
  const prefix = argv['repo-prefix'] ? ` --repo-prefix ${argv['repo-prefix']}` : '';
  const ca = tls?.caPem && argv['tls-generate'] ? ` --ca-file ${argv['tls-generate']}/ca.crt` : '';
  return `airgap-bundle mirror-config --endpoint ${endpoint}${perRegistry}${prefix}${ca} -o DIR`;
}
