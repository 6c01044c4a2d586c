import type { Argv } from 'yargs';
import type { RegistryCheck } from '../import/registry-check.js';
import { isRegistryHost, repositoryMapping, type RepositoryMapping } from '../reference/mapping.js';
import { table } from '../ui/format.js';
import type { Reporter } from '../ui/reporter.js';
import { UsageError } from './errors.js';
import { printable } from '../util/text.js';

/** Options naming the isolated registry and how bundle references map onto it. */
export interface TargetArgs {
  registry: string;
  username?: string;
  'password-stdin': boolean;
  'keep-registry-host': boolean;
  'repo-prefix'?: string;
}

export function targetOptions<T>(y: Argv<T>, required = true) {
  return y
    .option('registry', {
      type: 'string',
      demandOption: required,
      describe: 'The isolated registry, host[:port] (e.g. 10.5.0.1:6000)',
    })
    .option('username', { type: 'string', describe: 'Registry user (password from --password-stdin)' })
    .option('password-stdin', {
      type: 'boolean',
      default: false,
      describe: 'Read the registry password from standard input',
    })
    .option('keep-registry-host', {
      type: 'boolean',
      default: false,
      describe: 'Keep the source registry as first path component (REGISTRY/ghcr.io/siderolabs/…)',
    })
    .option('repo-prefix', { type: 'string', describe: 'Put every repository under PREFIX/ (e.g. a Harbor project)' });
}

/** The options that say how bundle references map onto repositories, as each command declares them. */
export interface MappingArgs {
  'keep-registry-host'?: boolean;
  'repo-prefix'?: string;
}

/**
 * The repository mapping of the command line, the one every command builds:
 * `import` writes by it, and `verify --registry`, `serve`, `inventory` and
 * `mirror-config` must follow the same one. A bad `--repo-prefix` is refused (exit 2).
 */
export function mappingFrom(argv: MappingArgs): RepositoryMapping {
  const given = givenMapping(argv);
  return repositoryMapping(given.keepRegistryHost, given.repoPrefix);
}

/**
 * The mapping options as given, the prefix not yet checked (an empty one is
 * none). For `mirror-config`, which checks the prefix among all its options
 * (`checkMirrorOptions`) so that one run names every mistake.
 */
export function givenMapping(argv: MappingArgs): RepositoryMapping {
  const prefix = argv['repo-prefix'];
  return { keepRegistryHost: argv['keep-registry-host'] ?? false, ...(prefix ? { repoPrefix: prefix } : {}) };
}

/** `--registry` is a host with an optional port: no scheme, no path. */
export function validateRegistry(value: string): string {
  const v = value.trim();
  const shown = printable(value);
  if (/^[a-z]+:\/\//i.test(v))
    throw new UsageError(
      `--registry "${shown}" takes host[:port] without a scheme; use --plain-http for an http registry`,
    );
  if (v.includes('/'))
    throw new UsageError(
      `--registry "${shown}" takes host[:port] only; use --repo-prefix for a path inside the registry`,
    );
  // Lowercase only: a registry is named the way every reference to it is normalised.
  if (v !== v.toLowerCase() || !isRegistryHost(v)) throw new UsageError(`--registry "${shown}" is not a host[:port]`);
  return v;
}

/**
 * `--username` with `--password-stdin`, as the explicit credential for the
 * target registry; checked before standard input is read.
 */
export async function explicitCredential(
  argv: { username?: string; 'password-stdin'?: boolean },
  host: string,
): Promise<{ host: string; credential: { username: string; password: string } } | undefined> {
  if (argv['password-stdin'] && !argv.username) throw new UsageError('--password-stdin needs --username');
  if (!argv.username) return undefined;
  const password = argv['password-stdin'] ? await readPasswordStdin() : '';
  return { host, credential: { username: argv.username, password } };
}

async function readPasswordStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (text === '') throw new UsageError('--password-stdin: standard input was empty');
  return text;
}

export function printRegistryCheck(check: RegistryCheck, reporter: Reporter): void {
  if (!reporter.showsProgress) return;
  const rows = [['REPOSITORY', 'TAG/DIGEST', 'EXPECTED', 'FOUND', 'STATUS']];
  for (const r of check.rows) {
    rows.push([
      r.repository,
      r.selector.startsWith('sha256:') ? `@${r.selector.slice(7, 19)}` : r.selector,
      r.expected.slice(0, 19),
      r.found?.slice(0, 19) ?? '-',
      r.status + (r.detail ? ` (${r.detail})` : ''),
    ]);
  }
  reporter.info(
    `registry ${printable(check.registry)}: ${check.catalog === 'listed' ? 'catalog listed' : 'catalog not available (disabled or restricted); checked each reference directly'}`,
  );
  for (const u of check.unlisted) reporter.info(`  repository ${printable(u)} is not in the catalog`);
  reporter.info(table(rows));
  reporter.info(
    check.ok
      ? `registry matches the bundle: ${check.rows.length} references resolve to the bundle's digests`
      : 'registry does NOT match the bundle',
  );
}
