import yaml from 'js-yaml';
import type { ImageRecord } from '../bundle/format.js';
import { HelmMediaType } from '../charts/helm-artifact.js';
import { isChartName } from '../charts/request.js';
import { parseManifest } from '../oci/manifest.js';
import type { BlobHealth } from './blob-health.js';
import { readWhole, sendWhole } from './blob-sender.js';
import type { ServedBlob } from './content.js';
import { RegistryProblem } from './errors.js';
import type { Exchange } from './handlers.js';

/**
 * `serve`'s classic chart repository: `/charts/index.yaml` and
 * `/charts/NAME-VERSION.tgz`, for tools that speak only classic repositories
 * (old Helm, some GitOps controllers). Generated from the carried chart
 * records of the bundle; a `.tgz` is the chart layer blob, byte for byte.
 */
export interface ServedChart {
  name: string;
  version: string;
  appVersion?: string;
  /** `NAME-VERSION.tgz`: the download's file name, and its URL under /charts/. */
  file: string;
  /** The chart layer: the .tgz's digest and size. */
  digest: string;
  size: number;
}

/**
 * The carried charts of the bundle's records, each with its chart layer found
 * in its manifest (`manifestOf` reads a manifest the bundle holds). A record
 * whose name or version could not be a file name is not served.
 */
export function servedCharts(images: readonly ImageRecord[], manifestOf: (digest: string) => Buffer): ServedChart[] {
  const out = new Map<string, ServedChart>();
  for (const image of images) {
    const c = image.carried;
    if (c?.kind !== 'chart' || c.version === undefined || !isChartName(c.name)) continue;
    if (!/^[A-Za-z0-9.+_-]{1,128}$/.test(c.version)) continue;
    const manifest = parseManifest(manifestOf(image.digest), image.mediaType, image.reference);
    if (manifest.kind !== 'image') continue;
    const layer = manifest.layers.find(
      (l) => l.mediaType === HelmMediaType.chart || l.mediaType === HelmMediaType.legacyChart,
    );
    if (!layer) continue;
    const file = `${c.name}-${c.version}.tgz`;
    if (!out.has(file))
      out.set(file, {
        name: c.name,
        version: c.version,
        ...(c.appVersion !== undefined ? { appVersion: c.appVersion } : {}),
        file,
        digest: layer.digest,
        size: layer.size,
      });
  }
  return [...out.values()];
}

/**
 * index.yaml as Helm's `repo index` writes it: entries by name, newest first
 * as listed, each with its digest (hex, as Helm writes it) and a URL relative
 * to the index, so it works under any host the repository is reached at.
 */
export function chartIndexYaml(charts: readonly ServedChart[]): string {
  const entries: Record<string, unknown[]> = {};
  for (const c of [...charts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    (entries[c.name] ??= []).push({
      apiVersion: 'v2',
      name: c.name,
      version: c.version,
      ...(c.appVersion !== undefined ? { appVersion: c.appVersion } : {}),
      digest: c.digest.replace(/^sha256:/, ''),
      urls: [c.file],
    });
  }
  return yaml.dump({ apiVersion: 'v1', entries, generated: '1970-01-01T00:00:00Z' }, { noRefs: true, lineWidth: -1 });
}

/** What a path under `/charts/` asks for: the index, one chart's .tgz, or nothing served here. */
export type ChartRoute = { kind: 'index' } | { kind: 'chart'; file: string } | undefined;

export function parseChartRoute(path: string): ChartRoute {
  if (path === '/charts/index.yaml') return { kind: 'index' };
  const m = /^\/charts\/([A-Za-z0-9][A-Za-z0-9.+_-]{0,300}\.tgz)$/.exec(path);
  return m ? { kind: 'chart', file: m[1]! } : undefined;
}

/** The chart a `/charts/FILE` download names, if the bundle carries it. */
export function chartByFile(charts: readonly ServedChart[], file: string): ServedChart | undefined {
  return charts.find((c) => c.file === file);
}

/**
 * The carried charts of `images`, their manifests read (and checked against
 * their digests) from the bundle once at start: a damaged one is not served.
 */
export async function loadServedCharts(
  images: readonly ImageRecord[],
  blobs: ReadonlyMap<string, ServedBlob>,
): Promise<ServedChart[]> {
  const manifests = new Map<string, Buffer>();
  for (const im of images) {
    if (im.carried?.kind !== 'chart' || manifests.has(im.digest)) continue;
    const blob = blobs.get(im.digest);
    const bytes = blob ? await readWhole(im.digest, blob) : undefined;
    if (bytes) manifests.set(im.digest, bytes);
  }
  return servedCharts(
    images.filter((im) => manifests.has(im.digest)),
    (digest) => manifests.get(digest)!,
  );
}

export interface ChartsContext {
  charts: readonly ServedChart[];
  content: { blobs: ReadonlyMap<string, ServedBlob> };
  health: BlobHealth;
  warn: (line: string) => void;
}

/** Answers `GET`/`HEAD /charts/index.yaml` and `/charts/NAME-VERSION.tgz`. */
export async function answerCharts(route: ChartRoute, x: Exchange, ctx: ChartsContext): Promise<void> {
  if (!route) throw new RegistryProblem('NOT_FOUND', 'not served: /charts/ has index.yaml and NAME-VERSION.tgz');
  if (route.kind === 'index') {
    const body = Buffer.from(chartIndexYaml(ctx.charts));
    x.res.writeHead(200, { 'Content-Type': 'application/yaml', 'Content-Length': String(body.length) });
    if (x.req.method === 'HEAD') return void x.res.end();
    x.sent.bytes += body.length;
    return void x.res.end(body);
  }
  const chart = chartByFile(ctx.charts, route.file);
  const blob = chart && ctx.content.blobs.get(chart.digest);
  if (!chart || !blob) throw new RegistryProblem('NOT_FOUND', 'no chart of that name and version in the bundle');
  if (ctx.health.damage(chart.digest) !== undefined)
    throw new RegistryProblem('NOT_FOUND', 'damaged in the bundle: its bytes do not match its digest');
  x.res.writeHead(200, { 'Content-Type': 'application/gzip', 'Content-Length': String(chart.size) });
  if (x.req.method === 'HEAD') return void x.res.end();
  // Hashed as sent, like every blob: a damaged chart is cut short, never completed.
  const outcome = await sendWhole(x.res, chart.digest, blob, x.sent);
  if (outcome === 'damaged') {
    ctx.health.markDamaged(chart.digest, 'bytes do not match the digest');
    ctx.warn(`chart ${chart.file} is damaged in the bundle (its bytes do not match its digest): not served`);
  } else if (outcome === 'sent') ctx.health.markGood(chart.digest);
}
