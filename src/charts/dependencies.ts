import { resolve as resolvePath } from 'node:path';
import { printable } from '../util/text.js';
import type { ArchiveEntry } from './archive.js';
import type { ChartDependency, LoadedChart } from './chart.js';
import type { ChartContext } from './context.js';
import { ChartError, ChartRequestError } from './errors.js';
import { archiveChartEntries, chartFromEntries, readChartFolderEntries } from './load.js';
import { parseChartLock, type ChartLock } from './metadata.js';
import { fetchOciChart } from './oci.js';
import { packageChart } from './package.js';
import { chooseEntry, fetchEntry, fetchIndexEntries } from './repository.js';
import { ociRequest } from './request.js';
import { pickVersion } from './versions.js';

/** `file://` dependencies inside `file://` dependencies: a chain this long is a loop. */
const MAX_LOCAL_DEPTH = 8;

/** The chart's entries with its missing dependencies added, and one line per dependency added. */
export interface Vendored {
  entries: ArchiveEntry[];
  /** `NAME VERSION from SOURCE`, for the record and the user. */
  added: string[];
}

/**
 * Makes the chart installable offline, as `helm dependency build` would: every
 * dependency Chart.yaml names that is not already in `charts/` is fetched
 * (the version Chart.lock chose when there is a lock, else the highest match
 * of the constraint) and added as `charts/NAME-VERSION.tgz`. Repository
 * dependencies come from their classic repository or OCI registry with the
 * same checks as a requested chart; `file://` ones (a local chart's only) are
 * packaged from their folder, with their own dependencies vendored in turn.
 * `localDir` is the chart's folder when it is a local one.
 */
export async function vendorDependencies(
  entries: ArchiveEntry[],
  chart: LoadedChart,
  ctx: ChartContext,
  where: string,
  localDir?: string,
  depth = 0,
): Promise<Vendored> {
  const present = new Set(chart.subcharts.map((s) => s.metadata.name));
  const missing = chart.metadata.dependencies.filter((d) => !present.has(d.name));
  if (missing.length === 0) return { entries, added: [] };
  const lock = lockOf(chart, where);
  const out = [...entries];
  const added: string[] = [];
  for (const dep of missing) {
    const version = lockedVersion(dep, lock, where);
    const what = `${where}: dependency ${dep.name}`;
    const fetched = await fetchDependency(dep, version, ctx, what, localDir, depth);
    const path = `charts/${dep.name}-${fetched.version}.tgz`;
    if (out.some((e) => e.path === path)) throw new ChartError(`${what}: ${path} is named twice`);
    out.push({ path, data: fetched.tgz });
    added.push(`${dep.name} ${fetched.version} from ${fetched.source}`);
  }
  return { entries: out, added };
}

function lockOf(chart: LoadedChart, where: string): ChartLock | undefined {
  const v2 = chart.files.get('Chart.lock');
  const v1 = chart.files.get('requirements.lock');
  const bytes = chart.metadata.apiVersion === 'v1' ? (v1 ?? v2) : (v2 ?? v1);
  return bytes ? parseChartLock(bytes, where) : undefined;
}

/**
 * The version to fetch: the lock's, when it lists the dependency (checked to
 * still satisfy Chart.yaml's constraint: a lock out of sync is refused, as
 * `helm dependency build` refuses it), else Chart.yaml's constraint.
 */
function lockedVersion(dep: ChartDependency, lock: ChartLock | undefined, where: string): string {
  if (!lock) return dep.version;
  const locked = lock.dependencies.find((l) => l.name === dep.name && (l.repository ?? '') === (dep.repository ?? ''));
  if (!locked)
    throw new ChartError(
      `${where}: Chart.lock does not list the dependency ${dep.name} of Chart.yaml; the lock is out of sync: run helm dependency update`,
    );
  if (dep.version !== '' && pickVersion([locked.version], dep.version) === undefined)
    throw new ChartError(
      `${where}: Chart.lock pins ${dep.name} ${printable(locked.version, 60)}, outside Chart.yaml's "${printable(dep.version, 60)}"; the lock is out of sync: run helm dependency update`,
    );
  return locked.version;
}

async function fetchDependency(
  dep: ChartDependency,
  version: string,
  ctx: ChartContext,
  what: string,
  localDir: string | undefined,
  depth: number,
): Promise<{ tgz: Buffer; version: string; source: string }> {
  const repo = dep.repository ?? '';
  const wanted = version === '' ? undefined : version;
  let result: { tgz: Buffer; version: string; source: string };
  if (/^https?:\/\//i.test(repo)) {
    const entry = chooseEntry(await fetchIndexEntries(ctx, repo, dep.name), wanted, what);
    const fetched = await fetchEntry(ctx, entry, what);
    result = { tgz: fetched.tgz, version: entry.version, source: entry.urls[0]!.href };
  } else if (/^oci:\/\//i.test(repo)) {
    const req = ociRequest(`${repo.replace(/\/+$/, '')}/${dep.name}`, [], what);
    const fetched = await fetchOciChart(ctx, req.registry, req.repository, wanted, what);
    result = { tgz: fetched.tgz, version: fetched.version, source: `${req.source}@${fetched.version}` };
  } else if (/^file:\/\//i.test(repo)) {
    if (localDir === undefined)
      throw new ChartError(
        `${what}: a file:// dependency that the archive does not carry in charts/; package the chart with helm dependency build first`,
      );
    result = await packageLocalDependency(resolvePath(localDir, repo.slice('file://'.length)), ctx, what, depth);
  } else if (repo === '') {
    throw new ChartError(`${what}: no repository, and not in charts/; add it to charts/ or name its repository`);
  } else {
    throw new ChartRequestError(
      `${what}: the repository "${printable(repo, 80)}" is an alias of a local Helm configuration; write its URL in Chart.yaml, or vendor it with helm dependency build`,
    );
  }
  const entries = archiveChartEntries(result.tgz, `${what} ${result.version}`);
  const sub = chartFromEntries(entries, `${what} ${result.version}`, 1);
  if (sub.metadata.name !== dep.name)
    throw new ChartError(`${what}: the fetched archive holds the chart "${sub.metadata.name}", not "${dep.name}"`);
  return result;
}

/** A `file://` dependency: its folder packaged, its own dependencies vendored in. */
async function packageLocalDependency(
  dir: string,
  ctx: ChartContext,
  what: string,
  depth: number,
): Promise<{ tgz: Buffer; version: string; source: string }> {
  if (depth >= MAX_LOCAL_DEPTH)
    throw new ChartRequestError(`${what}: file:// dependencies nested more than ${MAX_LOCAL_DEPTH} deep (a loop?)`);
  const entries = await readChartFolderEntries(dir);
  const chart = chartFromEntries(entries, dir, 0);
  const vendored = await vendorDependencies(entries, chart, ctx, dir, dir, depth + 1);
  return { tgz: packageChart(chart.metadata.name, vendored.entries), version: chart.metadata.version, source: dir };
}
