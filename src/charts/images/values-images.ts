/**
 * Images read from a chart's values, without rendering it: what most charts
 * put there for their templates to assemble. Two shapes are recognised:
 *
 * - a string under a key ending in `image` (`image: nginx:1.27`,
 *   `sidecarImage: …`);
 * - a map under such a key, or any map holding a `tag` or `digest`, with a
 *   `repository` (or `image`/`name` beside a `registry`):
 *   `{registry, repository, tag, digest}` as Bitnami, ingress-nginx,
 *   metrics-server and cert-manager write it. `global.imageRegistry` (Bitnami)
 *   or `global.image.registry` replaces the `registry` of such maps, as the
 *   common templates do; an empty `tag` is the chart's appVersion, with or
 *   without a leading `v` (see `ImageFinding.candidates`).
 *
 * A map with `enabled: false` switches off every image below it: those are
 * reported as off by default. The walk is bounded in depth and entries.
 */
import type { ImageFinding } from './finding.js';
import { isMap, MAX_VALUES_DEPTH, own, valueAt, type Values } from './values.js';

/** Most map entries and list items one chart's values walk visits. */
export const MAX_VALUES_ENTRIES = 100_000;

export interface ValuesWalkOptions {
  /** Keys of the top level not to walk: subcharts' blocks (read in the subchart's own scope), `global` below the top. */
  skip: ReadonlySet<string>;
  /** The chart's appVersion: what an empty tag most often means. */
  appVersion: string | undefined;
}

export interface ValuesWalkResult {
  findings: ImageFinding[];
  warnings: string[];
}

interface Walk {
  opts: ValuesWalkOptions;
  globalRegistry: string | undefined;
  visited: number;
  out: ValuesWalkResult;
}

const IMAGE_KEY = /image$/i;
const TEMPLATED = /\{\{|\$\{/;

/** A non-empty trimmed string, or a number written as YAML reads it (`tag: 1.27`), else undefined. */
function text(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

function pathText(path: readonly string[]): string {
  return path.reduce((acc, k) => (/^\[\d+\]$/.test(k) ? acc + k : acc === '' ? k : `${acc}.${k}`), '');
}

/** The registry every image-shaped map is pulled from when the values set one globally. */
function globalRegistryOf(values: Values): string | undefined {
  return text(valueAt(values, 'global.imageRegistry')) ?? text(valueAt(values, 'global.image.registry'));
}

/** Whether a map is meant as an image: `repository` (or `image`/`name` with a `registry`) under an image key, or with a tag or digest. */
function imageMapRepository(key: string, map: Values): string | undefined {
  const repo = text(map.repository) ?? (own(map, 'registry') ? (text(map.image) ?? text(map.name)) : undefined);
  if (repo === undefined) return undefined;
  return IMAGE_KEY.test(key) || own(map, 'tag') || own(map, 'digest') ? repo : undefined;
}

function fromImageMap(w: Walk, path: string[], map: Values, repo: string, off: string | undefined): void {
  const where = pathText(path);
  const ownRegistry = own(map, 'registry') ? text(map.registry) : undefined;
  const registry = own(map, 'registry') ? (w.globalRegistry ?? ownRegistry) : undefined;
  const tag = text(map.tag);
  const digest = text(map.digest);
  if ([repo, registry, tag, digest].some((p) => p !== undefined && TEMPLATED.test(p))) {
    w.out.warnings.push(`values: ${where} is built from a template string; not read (use --render)`);
    return;
  }
  const base = registry ? `${registry.replace(/\/+$/, '')}/${repo}` : repo;
  const how = `values: ${where}${registry && registry !== ownRegistry ? ' (registry from global)' : ''}`;
  const finding: ImageFinding = { image: '', how, ...(off ? { off } : {}) };
  if (tag !== undefined || digest !== undefined) {
    finding.image = `${base}${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  } else if (w.opts.appVersion !== undefined) {
    const app = w.opts.appVersion;
    const other = app.startsWith('v') ? app.slice(1) : `v${app}`;
    finding.candidates = [`${base}:${app}`, ...(other !== '' ? [`${base}:${other}`] : [])];
    finding.image = finding.candidates[0]!;
  } else {
    w.out.warnings.push(`values: ${where} has no tag and the chart no appVersion; not listed`);
    return;
  }
  w.out.findings.push(finding);
}

function visit(w: Walk, node: unknown, path: string[], off: string | undefined, depth: number): void {
  if (depth > MAX_VALUES_DEPTH) return;
  if (Array.isArray(node)) {
    node.forEach((item, i) => {
      if (++w.visited <= MAX_VALUES_ENTRIES) visit(w, item, [...path, `[${i}]`], off, depth + 1);
    });
    return;
  }
  if (!isMap(node)) return;
  const here = node.enabled === false && own(node, 'enabled') ? `${pathText([...path, 'enabled'])} is false` : off;
  for (const [key, value] of Object.entries(node)) {
    if (++w.visited > MAX_VALUES_ENTRIES) return;
    if (depth === 0 && w.opts.skip.has(key)) continue;
    const at = [...path, key];
    const repo = isMap(value) ? imageMapRepository(key, value) : undefined;
    if (repo !== undefined) fromImageMap(w, at, value as Values, repo, here);
    else if (typeof value === 'string' && IMAGE_KEY.test(key) && value.trim() !== '')
      fromImageString(w, at, value, here);
    else visit(w, value, at, here, depth + 1);
  }
}

function fromImageString(w: Walk, path: string[], value: string, off: string | undefined): void {
  const where = pathText(path);
  if (TEMPLATED.test(value)) {
    w.out.warnings.push(`values: ${where} is a template string; not read (use --render)`);
    return;
  }
  w.out.findings.push({ image: value.trim(), how: `values: ${where}`, ...(off ? { off } : {}) });
}

/** Every image-shaped value of a chart's (merged, scoped) values. */
export function imagesFromValues(values: Values, opts: ValuesWalkOptions): ValuesWalkResult {
  const w: Walk = { opts, globalRegistry: globalRegistryOf(values), visited: 0, out: { findings: [], warnings: [] } };
  visit(w, values, [], undefined, 0);
  if (w.visited > MAX_VALUES_ENTRIES)
    w.out.warnings.push(`values: more than ${MAX_VALUES_ENTRIES} entries; the rest was not read`);
  return w.out;
}
