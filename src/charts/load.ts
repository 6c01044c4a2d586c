import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { printable } from '../util/text.js';
import { ARCHIVE_BOUNDS, newArchiveBudget, readTgzEntries, type ArchiveBudget, type ArchiveEntry } from './archive.js';
import type { LoadedChart } from './chart.js';
import { ChartError, ChartRequestError } from './errors.js';
import { parseHelmignore } from './helmignore.js';
import { parseChartYaml } from './metadata.js';
import { CHART_YAML_BOUNDS, isMapping, parseBoundedYaml } from './yaml.js';

/** Subcharts inside subcharts: real charts nest two or three deep. */
const MAX_SUBCHART_DEPTH = 8;

/**
 * A chart archive (`.tgz`), read in memory and checked: every entry under one
 * top folder, plain files within ARCHIVE_BOUNDS, Chart.yaml and values.yaml
 * parsed with bounds, subcharts (`charts/*.tgz` and `charts/NAME/`) loaded the
 * same way. Nothing is written to disk. `where` names the chart in errors.
 */
export function readChartArchive(tgz: Buffer, where: string): LoadedChart {
  const budget = newArchiveBudget();
  return chartFromEntries(archiveChartEntries(tgz, where, budget), where, 0, budget);
}

/** The entries of a chart archive relative to the chart's root (the top folder taken off). */
export function archiveChartEntries(tgz: Buffer, where: string, budget?: ArchiveBudget): ArchiveEntry[] {
  const entries = readTgzEntries(tgz, where, budget);
  const top = entries[0]?.path.split('/')[0];
  const out: ArchiveEntry[] = [];
  for (const e of entries) {
    const slash = e.path.indexOf('/');
    if (slash < 0 || e.path.slice(0, slash) !== top)
      throw new ChartError(
        `${where}: "${printable(e.path, 120)}" is not inside the chart's folder "${printable(top ?? '', 60)}/"; not a chart archive`,
      );
    out.push({ path: e.path.slice(slash + 1), data: e.data });
  }
  return out;
}

/**
 * A chart folder, read as `helm package` reads it: `.helmignore` honoured,
 * subcharts in `charts/`. A symbolic link is refused rather than followed, so
 * nothing outside the folder is packaged by accident. Errors are the user's
 * (exit 2): the folder is theirs.
 */
export async function loadChartFolder(dir: string): Promise<LoadedChart> {
  const entries = await readChartFolderEntries(dir);
  try {
    return chartFromEntries(entries, dir, 0);
  } catch (err) {
    throw err instanceof ChartError ? new ChartRequestError(err.message) : err;
  }
}

/** The files of a chart folder that `helm package` would put in its archive, in a stable order. */
export async function readChartFolderEntries(dir: string): Promise<ArchiveEntry[]> {
  let ignoreText: string | undefined;
  try {
    ignoreText = await readFile(join(dir, '.helmignore'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR')
      throw new ChartRequestError(`${dir}: not a chart folder or .tgz`);
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw folderError(dir, err);
  }
  const rules = parseHelmignore(ignoreText, `${dir}/.helmignore`);
  const out: ArchiveEntry[] = [];
  let total = 0;
  const walk = async (rel: string, depth: number): Promise<void> => {
    if (depth > ARCHIVE_BOUNDS.depth)
      throw new ChartRequestError(`${dir}: nested deeper than ${ARCHIVE_BOUNDS.depth} folders`);
    let names: string[];
    try {
      names = (await readdir(join(dir, rel))).sort();
    } catch (err) {
      throw folderError(join(dir, rel), err);
    }
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(dir, path));
      if (st.isSymbolicLink())
        throw new ChartRequestError(
          `${dir}: ${printable(path, 120)} is a symbolic link; replace it with the file, or list it in .helmignore`,
        );
      if (rules.ignores(path, st.isDirectory())) continue;
      if (st.isDirectory()) {
        await walk(path, depth + 1);
        continue;
      }
      if (!st.isFile()) throw new ChartRequestError(`${dir}: ${printable(path, 120)} is not a regular file`);
      total += st.size;
      if (st.size > ARCHIVE_BOUNDS.fileBytes || total > ARCHIVE_BOUNDS.uncompressedBytes)
        throw new ChartRequestError(
          `${dir}: larger than a chart may be (${ARCHIVE_BOUNDS.fileBytes} bytes a file, ${ARCHIVE_BOUNDS.uncompressedBytes} in all)`,
        );
      if (out.length >= ARCHIVE_BOUNDS.entries)
        throw new ChartRequestError(`${dir}: more than ${ARCHIVE_BOUNDS.entries} files`);
      out.push({ path, data: await readFile(join(dir, path)) });
    }
  };
  await walk('', 0);
  if (!out.some((e) => e.path === 'Chart.yaml'))
    throw new ChartRequestError(`${dir}: no Chart.yaml; not a chart folder`);
  return out;
}

function folderError(path: string, err: unknown): ChartRequestError {
  const code = (err as NodeJS.ErrnoException).code;
  return new ChartRequestError(
    `${path}: ${code === 'ENOENT' ? 'no such chart folder or file' : printable((err as Error).message, 160)}`,
  );
}

/**
 * The chart the entries (paths relative to its root) make up. Everything
 * under `charts/` belongs to a subchart, grouped by its first part as Helm
 * groups it: `charts/NAME.tgz` is an archive, `charts/NAME/…` a folder;
 * `.prov` files there stay with the parent.
 */
export function chartFromEntries(
  entries: ArchiveEntry[],
  where: string,
  depth: number,
  budget: ArchiveBudget = newArchiveBudget(),
): LoadedChart {
  if (depth > MAX_SUBCHART_DEPTH) throw new ChartError(`${where}: subcharts nested deeper than ${MAX_SUBCHART_DEPTH}`);
  const files = new Map<string, Buffer>();
  const groups = new Map<string, ArchiveEntry[]>();
  for (const e of entries) {
    if (e.path.startsWith('charts/') && !e.path.endsWith('.prov')) {
      const rest = e.path.slice('charts/'.length);
      const name = rest.split('/')[0]!;
      let group = groups.get(name);
      if (!group) groups.set(name, (group = []));
      group.push({ path: rest.slice(name.length + 1), data: e.data });
    } else files.set(e.path, e.data);
  }
  const chartYaml = files.get('Chart.yaml');
  if (!chartYaml) throw new ChartError(`${where}: no Chart.yaml; not a chart`);
  const metadata = parseChartYaml(chartYaml, where, files.get('requirements.yaml'));
  const at = `${where} (${metadata.name} ${metadata.version})`;
  const subcharts: LoadedChart[] = [];
  for (const [name, group] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const sub = `${at}: charts/${printable(name, 80)}`;
    if (group.length === 1 && group[0]!.path === '' && name.endsWith('.tgz'))
      subcharts.push(chartFromEntries(archiveChartEntries(group[0]!.data, sub, budget), sub, depth + 1, budget));
    else if (group.some((e) => e.path === 'Chart.yaml'))
      subcharts.push(chartFromEntries(group, sub, depth + 1, budget));
    else throw new ChartError(`${sub}: neither a chart archive (.tgz) nor a chart folder; remove it or make it one`);
  }
  return { metadata, values: valuesOf(files.get('values.yaml'), at), files, subcharts };
}

function valuesOf(bytes: Buffer | undefined, where: string): Record<string, unknown> {
  if (!bytes) return {};
  const doc = parseBoundedYaml(bytes, `${where}: values.yaml`, CHART_YAML_BOUNDS);
  if (doc === null) return {};
  if (!isMapping(doc)) throw new ChartError(`${where}: values.yaml is not a YAML mapping`);
  return doc;
}
