import { rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import type { BundleSpec } from '../export/spec.js';
import { checkFileRequests, prepareFiles } from '../files/prepare.js';
import { parseFileArgument, type FileRequest } from '../files/request.js';
import type { BuiltArtifact } from '../oci/artifact.js';
import { isValidRepositoryPath } from '../reference/reference.js';
import { normalisePrefix } from '../reference/mapping.js';
import { HttpTransport } from '../registry/http.js';
import { DEFAULT_RETRY } from '../registry/retry.js';
import type { Reporter } from '../ui/reporter.js';
import { formatBytes } from '../util/bytes.js';
import { printable } from '../util/text.js';
import { UsageError } from './errors.js';
import type { RegistryArgs } from './registry-options.js';

/** The options of `export` that carry files beside the images. */
export interface FileArgs {
  file: string[];
  'allow-unpinned': boolean;
  'file-prefix': string;
}

export function fileOptions<T>(y: Argv<T>) {
  return y
    .option('file', {
      type: 'string',
      default: [] as string[],
      coerce: (v: string | string[]) => ([] as string[]).concat(v),
      describe:
        'Carry a file: URL|PATH[#sha256=HEX][@NAME] (repeatable); a URL must be pinned by its sha256 unless --allow-unpinned',
    })
    .option('allow-unpinned', {
      type: 'boolean',
      default: false,
      describe: 'Carry URL files without #sha256= (whatever the server sends; its digest is recorded)',
    })
    .option('file-prefix', {
      type: 'string',
      default: 'files',
      describe: 'Repository the files are carried under: PREFIX/NAME:TAG, what `oras pull` asks for after import',
    });
}

/**
 * Every file asked for, the `--file` options first, then the spec's `files:`,
 * checked as a whole before anything is fetched (names distinct, URLs pinned).
 */
export function checkedFileRequests(args: FileArgs, spec: BundleSpec | undefined): FileRequest[] {
  const requests = [...args.file.map((f, i) => parseFileArgument(f, `--file ${i + 1}`)), ...(spec?.files ?? [])];
  checkFileRequests(requests, { prefix: filePrefix(args), allowUnpinned: args['allow-unpinned'] });
  return requests;
}

/** `--file-prefix`, without slashes at either end, checked against the repository grammar. */
export function filePrefix(args: FileArgs): string {
  const prefix = normalisePrefix(args['file-prefix']);
  if (prefix !== '' && !isValidRepositoryPath(prefix))
    throw new UsageError(
      `--file-prefix "${printable(args['file-prefix'])}" is not a repository path (lowercase letters, digits, ".", "_", "-", "/")`,
    );
  return prefix;
}

/**
 * Where URL files are fetched to before the bundle is written: beside the
 * cache when there is one (kept, so later exports find them), else a hidden
 * folder beside the bundle, which `removeStaging` deletes once it is written.
 */
export function stagingFolder(output: string, cacheDir: string | undefined): { path: string; kept: boolean } {
  if (cacheDir) return { path: join(cacheDir, 'files'), kept: true };
  return { path: join(dirname(output), `.${basename(output)}.files`), kept: false };
}

/** Removes a staging folder that is not a cache's, once the bundle holds its files. */
export async function removeStaging(staging: { path: string; kept: boolean }): Promise<void> {
  if (!staging.kept) await rm(staging.path, { recursive: true, force: true });
}

/**
 * After a failed export: a staging folder that holds nothing (the first
 * download was refused) is removed; one that holds files is kept, so that a
 * rerun resumes from them.
 */
export async function tidyStaging(staging: { path: string; kept: boolean }): Promise<void> {
  if (!staging.kept) await rmdir(staging.path).catch(() => undefined);
}

/**
 * The artifacts of every file asked for: URL files fetched through the
 * project's HTTP transport (its redirects rules, `--ca-file`, the stall
 * watchdog) with the registry options' retries, path files hashed in place.
 */
export async function fileArtifacts(
  requests: FileRequest[],
  args: FileArgs & RegistryArgs,
  staging: string,
  reporter: Reporter,
): Promise<BuiltArtifact[]> {
  if (requests.length === 0) return [];
  const transport = new HttpTransport({
    caFiles: args['ca-file'] ?? [],
    insecureSkipTlsVerify: args['insecure-skip-tls-verify'],
    idleTimeoutMs: args.timeout * 1000,
  });
  try {
    return await prepareFiles(requests, {
      prefix: filePrefix(args),
      allowUnpinned: args['allow-unpinned'],
      staging,
      transport,
      retry: { ...DEFAULT_RETRY, retries: args.retries },
      onRetry: (err, attempt, delayMs) =>
        reporter.warn(`${err.message}; retry ${attempt} in ${(delayMs / 1000).toFixed(1)}s`),
      onFile: (f) =>
        reporter.info(
          `file ${printable(f.name)} ${f.digest.slice(0, 19)} ${formatBytes(f.size)}${f.fetched ? '' : ' (local)'}`,
        ),
    });
  } finally {
    transport.close();
  }
}
