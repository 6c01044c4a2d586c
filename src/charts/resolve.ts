import { readFile, stat } from 'node:fs/promises';
import type { BuiltArtifact } from '../oci/artifact.js';
import { redactUrl } from '../registry/errors.js';
import { printable } from '../util/text.js';
import { ARCHIVE_BOUNDS, type ArchiveEntry } from './archive.js';
import type { LoadedChart } from './chart.js';
import type { ChartContext } from './context.js';
import { vendorDependencies } from './dependencies.js';
import { ChartError, ChartRequestError } from './errors.js';
import { buildChartArtifact, chartRepository } from './helm-artifact.js';
import { archiveChartEntries, chartFromEntries, readChartArchive, readChartFolderEntries } from './load.js';
import { fetchOciChart, ociChartArtifact } from './oci.js';
import { packageChart } from './package.js';
import { chooseEntry, fetchEntry, fetchIndexEntries } from './repository.js';
import {
  describeRequest,
  type ChartRequest,
  type LocalChartRequest,
  type OciChartRequest,
  type RepoChartRequest,
} from './request.js';

export type { ChartContext } from './context.js';

/** A chart as the bundle carries it. */
export interface ResolvedChart {
  request: ChartRequest;
  chart: LoadedChart;
  /** the .tgz as carried */
  tgz: Buffer;
  artifact: BuiltArtifact;
  /**
   * Dependencies this tool added to `charts/` (`NAME VERSION from SOURCE`):
   * when there are any, the carried .tgz is not the upstream one.
   */
  vendored: string[];
}

/**
 * Every requested chart fetched, checked and made installable offline, in
 * request order: classic repositories (index digest checked, dependencies
 * vendored), OCI registries (kept byte for byte), local folders (packaged
 * deterministically) and `.tgz` files. The same chart and version asked for
 * twice is carried once; two different charts under one name and version are
 * refused, since only one can land at `PREFIX/NAME:VERSION`.
 */
export async function resolveCharts(requests: ChartRequest[], ctx: ChartContext): Promise<ResolvedChart[]> {
  const out: ResolvedChart[] = [];
  const byTarget = new Map<string, ResolvedChart>();
  for (const request of requests) {
    const resolved = await resolveOne(request, ctx);
    const target = `${resolved.artifact.repository}:${resolved.artifact.tag}`;
    const earlier = byTarget.get(target);
    if (earlier) {
      if (earlier.artifact.manifest.equals(resolved.artifact.manifest)) continue;
      throw new ChartRequestError(
        `charts ${describeRequest(earlier.request)} and ${describeRequest(request)} are both ${target} with other content; only one can be carried`,
      );
    }
    byTarget.set(target, resolved);
    out.push(resolved);
  }
  return out;
}

function resolveOne(request: ChartRequest, ctx: ChartContext): Promise<ResolvedChart> {
  if (request.kind === 'repo') return resolveRepoChart(request, ctx);
  if (request.kind === 'oci') return resolveOciChart(request, ctx);
  return resolveLocalChart(request, ctx);
}

async function resolveRepoChart(request: RepoChartRequest, ctx: ChartContext): Promise<ResolvedChart> {
  const what = `chart ${describeRequest(request)}`;
  const entry = chooseEntry(await fetchIndexEntries(ctx, request.source, request.name), request.version, what);
  const fetched = await fetchEntry(ctx, entry, what);
  const source = printable(redactUrl(entry.urls[0]!), 2000);
  const entries = archiveChartEntries(fetched.tgz, what);
  const chart = chartFromEntries(entries, what, 0);
  if (chart.metadata.name !== entry.name || chart.metadata.version !== entry.version)
    throw new ChartError(
      `${what}: the archive holds ${chart.metadata.name} ${printable(chart.metadata.version, 60)}, not what the index lists (${entry.name} ${printable(entry.version, 60)})`,
    );
  return carry(request, ctx, { entries, chart, tgz: fetched.tgz, provenance: fetched.provenance, source, what });
}

async function resolveOciChart(request: OciChartRequest, ctx: ChartContext): Promise<ResolvedChart> {
  const what = `chart ${describeRequest(request)}`;
  const fetched = await fetchOciChart(ctx, request.registry, request.repository, request.version, what);
  const chart = readChartArchive(fetched.tgz, what);
  if (chart.metadata.version !== fetched.version)
    throw new ChartError(
      `${what}: the tag ${printable(fetched.tag, 60)} holds version ${printable(chart.metadata.version, 60)} of ${chart.metadata.name}; a chart's tag is its version`,
    );
  // An OCI chart keeps its digest: dependencies it lacks are reported, not vendored into other bytes.
  const present = new Set(chart.subcharts.map((s) => s.metadata.name));
  const missing = chart.metadata.dependencies.filter((d) => !present.has(d.name)).map((d) => d.name);
  if (missing.length > 0)
    ctx.warn(
      `${what}: carried as published (its digest kept), without the dependencies ${missing.join(', ')} it names but does not hold; add them with their own --chart if it needs them`,
    );
  const artifact = ociChartArtifact(fetched, chartRepository(ctx.prefix, chart.metadata.name), {
    kind: 'chart',
    name: chart.metadata.name,
    version: chart.metadata.version,
    ...(chart.metadata.appVersion !== undefined ? { appVersion: chart.metadata.appVersion } : {}),
    source: `${request.source}@${fetched.version}`,
  });
  return { request, chart, tgz: fetched.tgz, artifact, vendored: [] };
}

/** A local chart is the user's: what is wrong with it is a request error (exit 2). */
async function resolveLocalChart(request: LocalChartRequest, ctx: ChartContext): Promise<ResolvedChart> {
  const what = `chart ${describeRequest(request)}`;
  try {
    const st = await stat(request.source).catch(() => {
      throw new ChartRequestError(`${what}: no such chart folder or .tgz`);
    });
    if (st.isDirectory()) {
      const entries = await readChartFolderEntries(request.source);
      const chart = chartFromEntries(entries, what, 0);
      const tgz = packageChart(chart.metadata.name, entries);
      return await carry(request, ctx, { entries, chart, tgz, source: request.source, what, localDir: request.source });
    }
    if (st.size > ARCHIVE_BOUNDS.compressedBytes)
      throw new ChartRequestError(
        `${what}: ${st.size} bytes, more than the ${ARCHIVE_BOUNDS.compressedBytes} a chart may be`,
      );
    const tgz = await readFile(request.source);
    const entries = archiveChartEntries(tgz, what);
    const chart = chartFromEntries(entries, what, 0);
    return await carry(request, ctx, { entries, chart, tgz, source: request.source, what });
  } catch (err) {
    throw err instanceof ChartError ? new ChartRequestError(err.message) : err;
  }
}

interface Loaded {
  entries: ArchiveEntry[];
  chart: LoadedChart;
  tgz: Buffer;
  provenance?: Buffer | undefined;
  source: string;
  what: string;
  localDir?: string;
}

/**
 * Vendors what the chart lacks, then builds its artifact. A chart that
 * needed nothing is carried as it came (its .tgz and .prov untouched); one
 * that got dependencies is packaged again, and its .prov, which signs the
 * upstream bytes, is left out.
 */
async function carry(request: ChartRequest, ctx: ChartContext, loaded: Loaded): Promise<ResolvedChart> {
  const vendored = await vendorDependencies(loaded.entries, loaded.chart, ctx, loaded.what, loaded.localDir);
  let { chart, tgz, provenance } = loaded;
  if (vendored.added.length > 0) {
    tgz = packageChart(chart.metadata.name, vendored.entries);
    chart = chartFromEntries(vendored.entries, loaded.what, 0);
    ctx.warn(
      `${loaded.what}: dependencies vendored into charts/ (${vendored.added.join('; ')}); the carried .tgz differs from the upstream one`,
    );
    if (provenance) {
      ctx.warn(`${loaded.what}: its .prov signs the upstream archive, not the vendored one; left out`);
      provenance = undefined;
    }
  }
  const artifact = buildChartArtifact({
    chart,
    tgz,
    provenance,
    source: loaded.source,
    prefix: ctx.prefix,
    vendored: vendored.added,
  });
  return { request, chart, tgz, artifact, vendored: vendored.added };
}
