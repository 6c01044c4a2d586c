/**
 * The charts a run asked for (`--chart`, the spec's `charts:`), once the
 * chart sources resolved them, read for the images they deploy, with the
 * values files each request names merged in order (read before anything is
 * downloaded: a values file that does not parse is the user's to fix first).
 */
import { readFile } from 'node:fs/promises';
import type { RegistryClient } from '../../registry/client.js';
import { UserInputError } from '../../util/user-input.js';
import type { LoadedChart } from '../chart.js';
import { ChartError } from '../errors.js';
import type { ChartRequest } from '../request.js';
import { CHART_YAML_BOUNDS, isMapping, parseBoundedYaml } from '../yaml.js';
import { discoverChartImages, type ChartImages } from './discover.js';
import { mergeValueFiles, type Values } from './values.js';

/** A values file the user named that cannot be used: exit 2. */
export class ValuesFileError extends UserInputError {
  override name = 'ValuesFileError';
}

export interface ChartDiscoveryRequest {
  render: boolean;
  kubeVersion?: string;
  allImages: boolean;
}

/** A chart as the sources resolved it: what discovery reads of a `ResolvedChart` (src/charts/resolve.ts). */
export interface ChartToRead {
  request: ChartRequest;
  chart: LoadedChart;
  /** The `.tgz` as carried (what `--render` hands to helm). */
  tgz: Buffer;
}

async function readValuesFile(file: string): Promise<Values> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ValuesFileError(
      `cannot read values file ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  let doc: unknown;
  try {
    doc = parseBoundedYaml(bytes, `values file ${file}`, CHART_YAML_BOUNDS);
  } catch (err) {
    if (err instanceof ChartError) throw new ValuesFileError(err.message);
    throw err;
  }
  if (doc === null) return {};
  if (!isMapping(doc)) throw new ValuesFileError(`values file ${file}: not a YAML mapping of values`);
  return doc;
}

/** Values files merged as `helm template -f A -f B` merges them. */
export async function mergedValuesFiles(files: readonly string[]): Promise<Values> {
  let merged: Values = {};
  for (const file of files) merged = mergeValueFiles(merged, await readValuesFile(file));
  return merged;
}

/** The values files of every request, each set merged, before anything is fetched. */
export async function requestValues(requests: readonly ChartRequest[]): Promise<Map<ChartRequest, Values>> {
  const out = new Map<ChartRequest, Values>();
  for (const r of requests) out.set(r, await mergedValuesFiles(r.values));
  return out;
}

/**
 * The images of every resolved chart, with its request's values (`values`,
 * from `requestValues`); `client` answers which tag exists when a values tag
 * is empty.
 */
export async function discoverResolvedCharts(
  charts: readonly ChartToRead[],
  values: ReadonlyMap<ChartRequest, Values>,
  client: RegistryClient | undefined,
  opts: ChartDiscoveryRequest,
): Promise<ChartImages[]> {
  const images: ChartImages[] = [];
  for (const { request, chart, tgz } of charts)
    images.push(
      await discoverChartImages(chart, tgz, {
        userValues: values.get(request) ?? (await mergedValuesFiles(request.values)),
        valuesFiles: request.values,
        render: opts.render,
        ...(opts.kubeVersion !== undefined ? { kubeVersion: opts.kubeVersion } : {}),
        allImages: opts.allImages,
        ...(client ? { client } : {}),
      }),
    );
  return images;
}
