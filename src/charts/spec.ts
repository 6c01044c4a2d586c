import { resolve } from 'node:path';
import { printable } from '../util/text.js';
import { ChartRequestError } from './errors.js';
import { localRequest, ociRequest, repoRequest, type ChartRequest } from './request.js';
import { isMapping } from './yaml.js';

const KEYS = ['repository', 'name', 'version', 'oci', 'path', 'values'] as const;
const MAX_SPEC_CHARTS = 1000;

/**
 * The spec's `charts:` list, one mapping per chart, in one of three forms:
 *
 * ```yaml
 * charts:
 *   - repository: https://kubernetes-sigs.github.io/metrics-server/
 *     name: metrics-server
 *     version: 3.13.1            # or a range: 3.x
 *   - oci: oci://registry-1.docker.io/bitnamicharts/redis
 *     version: 20.x
 *   - path: charts/my-app        # a folder or a .tgz, relative to the spec file
 *     values: [prod.yaml]        # values files for this chart, relative to the spec file
 * ```
 */
export function parseSpecCharts(value: unknown, file: string, baseDir: string): ChartRequest[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ChartRequestError(`${file}: "charts" must be a list of charts`);
  if (value.length > MAX_SPEC_CHARTS)
    throw new ChartRequestError(`${file}: "charts" lists more than ${MAX_SPEC_CHARTS}`);
  return value.map((entry, i) => specChart(entry, `${file}: charts[${i}]`, baseDir));
}

function specChart(entry: unknown, where: string, baseDir: string): ChartRequest {
  if (!isMapping(entry))
    throw new ChartRequestError(`${where} must be a mapping with repository and name, oci, or path`);
  for (const key of Object.keys(entry))
    if (!(KEYS as readonly string[]).includes(key))
      throw new ChartRequestError(`${where}: unknown key "${printable(key, 60)}" (allowed: ${KEYS.join(', ')})`);
  const str = (key: string): string | undefined => {
    const v = entry[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string' || v === '') throw new ChartRequestError(`${where}: "${key}" must be a string`);
    return v;
  };
  const values = valuesFiles(entry.values, where, baseDir);
  const version = str('version');
  const forms = ['repository', 'oci', 'path'].filter((k) => entry[k] !== undefined);
  if (forms.length !== 1)
    throw new ChartRequestError(`${where}: give exactly one of repository (with name), oci, or path`);
  const repository = str('repository');
  const oci = str('oci');
  const path = str('path');
  if (repository !== undefined) {
    const name = str('name');
    if (name === undefined) throw new ChartRequestError(`${where}: a repository chart needs "name"`);
    return repoRequest(repository, version !== undefined ? `${name}@${version}` : name, values, where);
  }
  if (str('name') !== undefined) throw new ChartRequestError(`${where}: "name" goes with "repository" only`);
  if (oci !== undefined) {
    if (!oci.startsWith('oci://')) throw new ChartRequestError(`${where}: "oci" must start with oci://`);
    if (oci.includes('@') && version !== undefined)
      throw new ChartRequestError(`${where}: give the version in "oci" or in "version", not both`);
    return ociRequest(version !== undefined ? `${oci}@${version}` : oci, values, where);
  }
  if (version !== undefined) throw new ChartRequestError(`${where}: a local chart has the version its Chart.yaml says`);
  return localRequest(resolve(baseDir, path!), values, where);
}

function valuesFiles(v: unknown, where: string, baseDir: string): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((f) => typeof f !== 'string' || f === ''))
    throw new ChartRequestError(`${where}: "values" must be a file or a list of files`);
  return (list as string[]).map((f) => resolve(baseDir, f));
}
