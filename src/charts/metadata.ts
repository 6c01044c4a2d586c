import { printable } from '../util/text.js';
import type { ChartDependency, ChartMetadata } from './chart.js';
import { ChartError } from './errors.js';
import { isChartName } from './request.js';
import { MAX_VERSION_LENGTH, parseChartVersion } from './versions.js';
import { CHART_YAML_BOUNDS, isMapping, parseBoundedYaml } from './yaml.js';

/** Entries of Chart.yaml's `dependencies` and `annotations` a chart may have: real ones have a handful. */
const MAX_DEPENDENCIES = 200;
const MAX_ANNOTATIONS = 500;
const MAX_FIELD_LENGTH = 64 * 1024;

/**
 * Chart.yaml, checked: `name` a chart name, `version` semver, the optional
 * fields strings when present. `requirements` is requirements.yaml (apiVersion
 * v1 charts keep their dependencies there). `where` names the chart.
 */
export function parseChartYaml(bytes: Buffer, where: string, requirements?: Buffer): ChartMetadata {
  const doc = parseBoundedYaml(bytes, `${where}: Chart.yaml`, CHART_YAML_BOUNDS);
  if (!isMapping(doc)) throw new ChartError(`${where}: Chart.yaml is not a YAML mapping`);
  const field = (key: string) => optionalString(doc[key], `${where}: Chart.yaml "${key}"`);
  const name = field('name');
  if (name === undefined || !isChartName(name))
    throw new ChartError(`${where}: Chart.yaml "name" is missing or not a chart name (letters, digits, '.', '_', '-')`);
  const version = field('version');
  if (version === undefined || version.length > MAX_VERSION_LENGTH || !parseChartVersion(version))
    throw new ChartError(`${where}: Chart.yaml "version" of ${name} is missing or not a semantic version`);
  const apiVersion = field('apiVersion') ?? 'v1';
  if (apiVersion !== 'v1' && apiVersion !== 'v2')
    throw new ChartError(`${where}: Chart.yaml "apiVersion" is ${printable(apiVersion, 40)}; only v1 and v2 exist`);
  const appVersion = field('appVersion');
  const type = field('type');
  const depsSource =
    apiVersion === 'v1' && requirements
      ? parseBoundedYaml(requirements, `${where}: requirements.yaml`, CHART_YAML_BOUNDS)
      : doc;
  return {
    apiVersion,
    name,
    version,
    ...(appVersion !== undefined ? { appVersion } : {}),
    ...(type !== undefined ? { type } : {}),
    annotations: stringMap(doc.annotations, `${where}: Chart.yaml "annotations"`),
    dependencies: dependencyList(isMapping(depsSource) ? depsSource.dependencies : undefined, where),
  };
}

/** A scalar as Helm reads it into a string field: numbers (`appVersion: 1.10`) as written in YAML 1.2 terms. */
function optionalString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v !== 'string') throw new ChartError(`${what} must be a string`);
  if (v.length > MAX_FIELD_LENGTH) throw new ChartError(`${what} is longer than ${MAX_FIELD_LENGTH} characters`);
  return v;
}

function stringMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isMapping(v)) throw new ChartError(`${what} must be a mapping of strings`);
  const entries = Object.entries(v);
  if (entries.length > MAX_ANNOTATIONS) throw new ChartError(`${what}: more than ${MAX_ANNOTATIONS} entries`);
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    const s = optionalString(value, `${what} "${printable(key, 80)}"`);
    if (s !== undefined) out[key] = s;
  }
  return out;
}

function dependencyList(v: unknown, where: string): ChartDependency[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ChartError(`${where}: "dependencies" must be a list`);
  if (v.length > MAX_DEPENDENCIES) throw new ChartError(`${where}: more than ${MAX_DEPENDENCIES} dependencies`);
  return v.map((d, i) => dependency(d, `${where}: dependencies[${i}]`));
}

function dependency(d: unknown, what: string): ChartDependency {
  if (!isMapping(d)) throw new ChartError(`${what} must be a mapping`);
  const name = optionalString(d.name, `${what} "name"`);
  if (name === undefined || !isChartName(name)) throw new ChartError(`${what}: "name" is missing or not a chart name`);
  const version = optionalString(d.version, `${what} "version"`) ?? '';
  if (version.length > MAX_VERSION_LENGTH) throw new ChartError(`${what}: "version" is too long`);
  const repository = optionalString(d.repository, `${what} "repository"`);
  const condition = optionalString(d.condition, `${what} "condition"`);
  const alias = optionalString(d.alias, `${what} "alias"`);
  if (alias !== undefined && !isChartName(alias)) throw new ChartError(`${what}: "alias" is not a chart name`);
  let tags: string[] | undefined;
  if (d.tags !== undefined && d.tags !== null) {
    if (!Array.isArray(d.tags) || d.tags.some((t) => typeof t !== 'string'))
      throw new ChartError(`${what}: "tags" must be a list of strings`);
    tags = d.tags as string[];
  }
  return {
    name,
    version,
    ...(repository ? { repository } : {}),
    ...(condition ? { condition } : {}),
    ...(tags ? { tags } : {}),
    ...(alias ? { alias } : {}),
  };
}

/** Chart.lock (or requirements.lock): the versions `helm dependency update` chose, and their digest. */
export interface ChartLock {
  dependencies: Array<{ name: string; version: string; repository?: string }>;
  digest?: string;
}

export function parseChartLock(bytes: Buffer, where: string): ChartLock {
  const doc = parseBoundedYaml(bytes, `${where}: Chart.lock`, CHART_YAML_BOUNDS);
  if (!isMapping(doc)) throw new ChartError(`${where}: Chart.lock is not a YAML mapping`);
  const deps = dependencyList(doc.dependencies, `${where}: Chart.lock`).map((d) => ({
    name: d.name,
    version: d.version,
    ...(d.repository ? { repository: d.repository } : {}),
  }));
  const digest = optionalString(doc.digest, `${where}: Chart.lock "digest"`);
  return { dependencies: deps, ...(digest ? { digest } : {}) };
}
