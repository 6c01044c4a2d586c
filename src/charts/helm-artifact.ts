import type { BuiltArtifact, BuiltBlob } from '../oci/artifact.js';
import { artifactManifest } from '../oci/artifact.js';
import { sha256Digest } from '../oci/digest.js';
import type { LoadedChart } from './chart.js';
import { ChartError } from './errors.js';
import { tagOfVersion } from './versions.js';
import { CHART_YAML_BOUNDS, isMapping, parseBoundedYaml } from './yaml.js';

/** What `helm push` writes and `helm pull` requires (Helm's pkg/registry constants). */
export const HelmMediaType = {
  config: 'application/vnd.cncf.helm.config.v1+json',
  chart: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
  provenance: 'application/vnd.cncf.helm.chart.provenance.v1.prov',
  /** The chart layer type of Helm 3.0 to 3.7's experimental OCI support, which pull still accepts. */
  legacyChart: 'application/tar+gzip',
} as const;

/** The default `--chart-prefix`: charts land under `charts/NAME`. */
export const DEFAULT_CHART_PREFIX = 'charts';

/** The carried chart, as built: its repository, tag and record. */
export interface ChartArtifactInput {
  chart: LoadedChart;
  tgz: Buffer;
  provenance?: Buffer | undefined;
  source: string;
  prefix: string;
  /** Dependencies this tool added (`NAME VERSION from SOURCE`): recorded on the manifest, since the .tgz is no longer upstream's. */
  vendored?: string[];
}

/** The manifest annotation that says which dependencies were vendored into a carried chart. */
export const VENDORED_ANNOTATION = 'airgap-bundle.chart.vendored-dependencies';

/**
 * The chart as an OCI artifact Helm pulls: a manifest whose config is the
 * chart's metadata as Helm serialises it, one chart layer (the `.tgz`), and a
 * provenance layer when the source had a `.prov`; the manifest annotations
 * Helm's push adds (title, version, description, url, source, authors, and the
 * chart's own annotations). `created` is left out unless SOURCE_DATE_EPOCH
 * names a time, so that the same chart gives the same digest.
 */
export function buildChartArtifact(input: ChartArtifactInput): BuiltArtifact {
  const { metadata } = input.chart;
  const chartYaml = input.chart.files.get('Chart.yaml');
  if (!chartYaml) throw new ChartError(`${input.source}: the chart has no Chart.yaml`);
  const doc = parseBoundedYaml(chartYaml, `${input.source}: Chart.yaml`, CHART_YAML_BOUNDS);
  const fields = isMapping(doc) ? doc : {};
  const config = helmConfigJson(fields, input.chart);
  const blobs: BuiltBlob[] = [
    blob(config, HelmMediaType.config, 'config'),
    blob(input.tgz, HelmMediaType.chart, 'layer'),
    ...(input.provenance ? [blob(input.provenance, HelmMediaType.provenance, 'layer')] : []),
  ];
  const manifest = artifactManifest({
    config: { mediaType: HelmMediaType.config, digest: blobs[0]!.digest, size: config.length },
    layers: blobs.slice(1).map((b) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size })),
    annotations: {
      ...helmAnnotations(fields, input.chart),
      ...(input.vendored?.length ? { [VENDORED_ANNOTATION]: input.vendored.join('; ') } : {}),
    },
  });
  return {
    repository: chartRepository(input.prefix, metadata.name),
    tag: tagOfVersion(metadata.version),
    carried: {
      kind: 'chart',
      name: metadata.name,
      version: metadata.version,
      ...(metadata.appVersion !== undefined ? { appVersion: metadata.appVersion } : {}),
      source: input.source,
    },
    manifest: manifest.bytes,
    blobs,
  };
}

/** Where a chart lands under CARRIED_REGISTRY: `PREFIX/NAME`, lower-case as OCI repositories must be. */
export function chartRepository(prefix: string, name: string): string {
  const repo = `${prefix}/${name}`;
  if (!/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(repo))
    throw new ChartError(
      `chart ${name}: "${repo}" is not a valid OCI repository name (lower-case letters, digits, '.', '_', '-'); Helm cannot push this chart to a registry either`,
    );
  return repo;
}

function blob(bytes: Buffer, mediaType: string, role: BuiltBlob['role']): BuiltBlob {
  return { digest: sha256Digest(bytes), size: bytes.length, mediaType, role, content: { bytes } };
}

/**
 * Chart.yaml as Helm's push serialises `chart.Metadata` (Go's encoding/json):
 * fields in the struct's order, empty ones left out, map keys sorted, and
 * `<`, `>`, `&`, U+2028 and U+2029 escaped as Go escapes them.
 */
export function helmConfigJson(doc: Record<string, unknown>, chart: LoadedChart): Buffer {
  const m = chart.metadata;
  const str = (k: string) => (typeof doc[k] === 'string' && doc[k] !== '' ? (doc[k] as string) : undefined);
  const strings = (k: string) =>
    Array.isArray(doc[k]) && doc[k].length > 0 ? (doc[k] as unknown[]).filter((s) => typeof s === 'string') : undefined;
  const maintainers = Array.isArray(doc.maintainers)
    ? doc.maintainers.filter(isMapping).map((x) => compact({ name: x.name, email: x.email, url: x.url }))
    : undefined;
  const out = compact({
    name: m.name,
    home: str('home'),
    sources: strings('sources'),
    version: m.version,
    description: str('description'),
    keywords: strings('keywords'),
    maintainers: maintainers?.length ? maintainers : undefined,
    icon: str('icon'),
    apiVersion: m.apiVersion,
    condition: str('condition'),
    tags: str('tags'),
    appVersion: m.appVersion || undefined,
    deprecated: doc.deprecated === true ? true : undefined,
    annotations: Object.keys(m.annotations).length ? sortedObject(m.annotations) : undefined,
    kubeVersion: str('kubeVersion'),
    dependencies: m.dependencies.length
      ? m.dependencies.map((d, i) => {
          const raw = dependencyDoc(doc, i);
          return compact({
            name: d.name,
            version: d.version || undefined,
            repository: d.repository ?? '',
            condition: d.condition,
            tags: d.tags?.length ? d.tags : undefined,
            enabled: raw.enabled === true ? true : undefined,
            'import-values':
              Array.isArray(raw['import-values']) && raw['import-values'].length
                ? goMapsSorted(raw['import-values'])
                : undefined,
            alias: d.alias,
          });
        })
      : undefined,
    type: m.type || undefined,
  });
  return Buffer.from(goJson(out));
}

function dependencyDoc(doc: Record<string, unknown>, i: number): Record<string, unknown> {
  const list = doc.dependencies;
  const d = Array.isArray(list) ? list[i] : undefined;
  return isMapping(d) ? d : {};
}

/** Helm's manifest annotations (pkg/registry generateOCIAnnotations), empty values left out. */
export function helmAnnotations(doc: Record<string, unknown>, chart: LoadedChart): Record<string, string> {
  const m = chart.metadata;
  const out: Record<string, string> = {};
  const add = (k: string, v: unknown) => {
    if (typeof v === 'string' && v !== '') out[k] = v;
  };
  add('org.opencontainers.image.description', doc.description);
  add('org.opencontainers.image.title', m.name);
  add('org.opencontainers.image.version', m.version);
  add('org.opencontainers.image.url', doc.home);
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  if (process.env.SOURCE_DATE_EPOCH && Number.isSafeInteger(epoch) && epoch >= 0)
    add('org.opencontainers.image.created', new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
  if (Array.isArray(doc.sources)) add('org.opencontainers.image.source', doc.sources[0]);
  if (Array.isArray(doc.maintainers) && doc.maintainers.length > 0) {
    const people = doc.maintainers.map((x) => {
      const p = isMapping(x) ? x : {};
      const name = typeof p.name === 'string' ? p.name : '';
      return typeof p.email === 'string' && p.email !== '' ? `${name} (${p.email})` : name;
    });
    add('org.opencontainers.image.authors', people.join(', '));
  }
  // The chart's own annotations, except the two Helm keeps for itself.
  for (const [k, v] of Object.entries(m.annotations)) {
    if (k !== 'org.opencontainers.image.title' && k !== 'org.opencontainers.image.version') add(k, v);
  }
  return out;
}

function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
}

function sortedObject(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** JSON as Go's encoding/json writes it: no spaces, HTML characters and line separators escaped. */
function goJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A free-form value (import-values) as Go holds it: maps are Go maps, marshalled with their keys sorted. */
function goMapsSorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(goMapsSorted);
  if (!isMapping(v)) return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, goMapsSorted(v[k])]),
  );
}
