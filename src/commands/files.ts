import { mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { openCheckedFile, type CheckedFile } from '../bundle/open/structure.js';
import { carriedFiles, type CarriedFile } from '../files/carried-files.js';
import { extractFile, locateBlobs } from '../files/extract.js';
import { Reporter } from '../ui/reporter.js';
import { formatBytes } from '../util/bytes.js';
import { printable } from '../util/text.js';
import { UsageError } from './errors.js';
import { outputOptions, type OutputArgs } from './output-options.js';

interface FilesArgs extends OutputArgs {
  bundle: string[];
  output: string;
  name: string[];
}

export const command = 'files <bundle..>';
export const describe =
  'Copy the files a bundle carries (export --file) out to a folder, each checked against its digest';

export function builder(y: Argv): Argv<FilesArgs> {
  return outputOptions(y)
    .positional('bundle', {
      type: 'string',
      array: true,
      demandOption: true,
      describe: 'Bundle tar, or the volumes of one set',
    })
    .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'Folder to write the files to' })
    .option('name', {
      type: 'string',
      default: [] as string[],
      coerce: (v: string | string[]) => ([] as string[]).concat(v),
      describe: 'Copy only the file of this name (repeatable; default every file)',
    })
    .example('$0 files talos.tar -o ./out', 'Every carried file, into ./out')
    .example('$0 files talos.tar -o /usr/local/bin --name talosctl-linux-amd64', 'One file, its mode kept')
    .epilog(
      'Reads the bundle in place (no network), hashes every byte it copies, writes each file under a hidden temporary name and renames it when every byte matched; the mode recorded at export is kept. ' +
        'Exit codes: 0 done, 1 failure (disk), 2 usage error (a name the bundle does not carry, a volume not given), 3 bundle damaged or altered (a damaged file is not written).',
    ) as unknown as Argv<FilesArgs>;
}

export async function handler(argv: ArgumentsCamelCase<FilesArgs>): Promise<void> {
  const reporter = new Reporter({ quiet: argv.quiet, json: argv.json, tty: process.stderr.isTTY === true });
  const opened: CheckedFile[] = [];
  for (const path of argv.bundle) opened.push(await openCheckedFile(path, 'no file was written'));
  const chosen = choose(carriedFiles(opened[0]!.metadata), argv.name, argv.bundle[0]!);
  const dir = resolve(argv.output);
  await outputFolder(dir);
  const where = locateBlobs(opened);
  const written: Array<{ name: string; path: string; digest: string; size: number; mode: string }> = [];
  try {
    reporter.startBytes(
      'write',
      `files to ${printable(dir)}`,
      chosen.reduce((n, f) => n + f.size, 0),
    );
    for (const f of chosen) {
      const path = await extractFile(f, where, dir, (n) => reporter.advance('write', n));
      written.push({ name: f.name, path, digest: f.digest, size: f.size, mode: f.mode.toString(8).padStart(4, '0') });
    }
  } finally {
    reporter.stop();
  }
  for (const w of written)
    reporter.info(`wrote ${printable(w.path, 400)} (${formatBytes(w.size)}, mode ${w.mode}), ${w.digest}`);
  reporter.info(`${written.length} file${written.length === 1 ? '' : 's'} written to ${printable(dir, 400)}`);
  reporter.result({ output: dir, files: written });
}

/** The files asked for by name (each must be carried), or every one; none at all is a mistake to report. */
function choose(files: CarriedFile[], names: string[], bundle: string): CarriedFile[] {
  if (files.length === 0)
    throw new UsageError(`${printable(bundle)} carries no files (export --file puts them in a bundle)`);
  if (names.length === 0) return files;
  const byName = new Map(files.map((f) => [f.name, f]));
  const missing = names.filter((n) => !byName.has(n));
  if (missing.length > 0)
    throw new UsageError(
      `${printable(bundle)} carries no file named ${missing.map((n) => `"${printable(n)}"`).join(', ')}; it carries: ${printable(files.map((f) => f.name).join(', '), 1000)}`,
    );
  return [...new Set(names)].map((n) => byName.get(n)!);
}

/** The output folder, made when missing; anything else at that path is refused. */
async function outputFolder(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (info && !info.isDirectory()) throw new UsageError(`-o ${printable(dir)} exists and is not a folder`);
  if (!info) await mkdir(dir, { recursive: true });
}
