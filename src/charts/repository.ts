import { printable } from '../util/text.js';
import { ARCHIVE_BOUNDS } from './archive.js';
import type { ChartContext } from './context.js';
import { fetchRepositoryFile, sha256Of } from './download.js';
import { ChartError, ChartRequestError } from './errors.js';
import { pickVersion } from './versions.js';
import { INDEX_YAML_BOUNDS, isMapping, parseBoundedYaml } from './yaml.js';

/** Versions of one chart an index may list: the busiest public charts have a few thousand. */
const MAX_VERSIONS_PER_CHART = 20_000;
const MAX_URLS = 16;
/** A `.prov` is a signed Chart.yaml and a digest: a few KiB. */
export const MAX_PROVENANCE_BYTES = 1 << 20;

/** One version of a chart as the repository's index.yaml lists it, checked. */
export interface IndexEntry {
  name: string;
  version: string;
  /** Absolute, resolved against the index's URL; http or https. */
  urls: URL[];
  /** `sha256:<hex>`, when the index gives one. */
  digest?: string;
}

/** A chart fetched from a classic repository: the .tgz as served, checked against its index entry. */
export interface FetchedRepositoryChart {
  entry: IndexEntry;
  tgz: Buffer;
  /** The `.prov` beside it, when the repository has one that names this archive's digest. */
  provenance?: Buffer;
}

/** The repository's index URL: `index.yaml` under the repository URL, as Helm forms it. */
export function indexUrl(repository: string): URL {
  return new URL('index.yaml', repository.endsWith('/') ? repository : `${repository}/`);
}

/** The entries of `name` in the repository's index.yaml. */
export async function fetchIndexEntries(ctx: ChartContext, repository: string, name: string): Promise<IndexEntry[]> {
  const url = indexUrl(repository);
  const what = `chart repository ${printable(repository, 160)}: index.yaml`;
  const bytes = (await fetchRepositoryFile(ctx, url, INDEX_YAML_BOUNDS.maxBytes, what))!;
  return indexEntries(bytes, url, name, what);
}

/** Parses index.yaml (bounded) and checks the entries of `name` alone: the rest of a large index is never walked twice. */
export function indexEntries(bytes: Buffer, url: URL, name: string, what: string): IndexEntry[] {
  const doc = parseBoundedYaml(bytes, what, INDEX_YAML_BOUNDS);
  if (!isMapping(doc) || !isMapping(doc.entries))
    throw new ChartError(`${what}: no "entries" mapping; is ${printable(url.href, 160)} a chart repository?`);
  const list = Object.hasOwn(doc.entries, name) ? doc.entries[name] : undefined;
  if (list === undefined) throw new ChartRequestError(`${what}: the repository has no chart "${name}"; check the name`);
  if (!Array.isArray(list)) throw new ChartError(`${what}: entries.${name} is not a list`);
  if (list.length > MAX_VERSIONS_PER_CHART)
    throw new ChartError(`${what}: entries.${name} lists more than ${MAX_VERSIONS_PER_CHART} versions; refused`);
  return list.map((e, i) => indexEntry(e, url, name, `${what}: entries.${name}[${i}]`));
}

function indexEntry(e: unknown, base: URL, name: string, what: string): IndexEntry {
  if (!isMapping(e)) throw new ChartError(`${what} is not a mapping`);
  const version = typeof e.version === 'string' ? e.version : typeof e.version === 'number' ? String(e.version) : '';
  if (version === '' || version.length > 128) throw new ChartError(`${what}: no usable "version"`);
  if (
    !Array.isArray(e.urls) ||
    e.urls.length === 0 ||
    e.urls.length > MAX_URLS ||
    e.urls.some((u) => typeof u !== 'string')
  )
    throw new ChartError(`${what} (${printable(version, 40)}): "urls" must list 1 to ${MAX_URLS} URLs`);
  const urls = (e.urls as string[]).map((u) => {
    let url: URL;
    try {
      url = new URL(u, base);
    } catch {
      throw new ChartError(`${what}: "${printable(u, 120)}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new ChartError(`${what}: "${printable(u, 120)}" is not an http or https URL`);
    return url;
  });
  let digest: string | undefined;
  if (e.digest !== undefined && e.digest !== null && e.digest !== '') {
    const hex = typeof e.digest === 'string' ? e.digest.replace(/^sha256:/, '') : '';
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new ChartError(`${what}: "digest" is not a sha256 hex digest`);
    digest = `sha256:${hex}`;
  }
  if (typeof e.name === 'string' && e.name !== name)
    throw new ChartError(`${what}: the entry names chart "${printable(e.name, 80)}", not "${name}"`);
  return { name, version, urls, ...(digest ? { digest } : {}) };
}

/** The entry Helm would pick for `wanted` (exact, or the highest match), or a request error naming what there is. */
export function chooseEntry(entries: IndexEntry[], wanted: string | undefined, what: string): IndexEntry {
  const version = pickVersion(
    entries.map((e) => e.version),
    wanted,
  );
  const entry = entries.find((e) => e.version === version);
  if (!entry) {
    const newest = pickVersion(
      entries.map((e) => e.version),
      '>=0.0.0-0',
    );
    throw new ChartRequestError(
      `${what}: no version matches "${printable(wanted ?? '(latest stable)', 80)}"${newest ? ` (the newest is ${printable(newest, 60)})` : ''}; give a version the repository has`,
    );
  }
  return entry;
}

/**
 * Downloads the chart an index entry names: its first URL, the bytes checked
 * against the entry's digest (an entry without one is fetched with a warning),
 * and the `.prov` beside it when there is one.
 */
export async function fetchEntry(ctx: ChartContext, entry: IndexEntry, what: string): Promise<FetchedRepositoryChart> {
  const url = entry.urls[0]!;
  const tgz = (await fetchRepositoryFile(
    ctx,
    url,
    ARCHIVE_BOUNDS.compressedBytes,
    `${what}: ${entry.name}-${entry.version}.tgz`,
  ))!;
  const digest = sha256Of(tgz);
  if (entry.digest === undefined)
    ctx.warn(
      `${what}: the index gives no digest for ${entry.name} ${entry.version}; its archive is carried unchecked (${digest})`,
    );
  else if (entry.digest !== digest)
    throw new ChartError(
      `${what}: ${entry.name} ${printable(entry.version, 60)} downloaded as ${digest}, but the index says ${entry.digest}; the repository or something between is serving other bytes: nothing is carried`,
    );
  const provenance = await fetchProvenance(ctx, url, digest, `${what}: ${entry.name}-${entry.version}.tgz.prov`);
  return { entry, tgz, ...(provenance ? { provenance } : {}) };
}

/**
 * The `.prov` of a chart, when the repository has one: it is carried only if
 * it names the archive's digest (a provenance file for other bytes would only
 * fail `helm verify` later, inside the gap). Its signature is Helm's to check.
 */
async function fetchProvenance(
  ctx: ChartContext,
  tgzUrl: URL,
  digest: string,
  what: string,
): Promise<Buffer | undefined> {
  const url = new URL(tgzUrl.href);
  url.pathname = `${url.pathname}.prov`;
  const prov = await fetchRepositoryFile(ctx, url, MAX_PROVENANCE_BYTES, what, true);
  if (!prov) return undefined;
  if (!prov.toString('utf8').includes(digest)) {
    ctx.warn(`${what}: does not name the archive's digest ${digest}; left out`);
    return undefined;
  }
  return prov;
}
