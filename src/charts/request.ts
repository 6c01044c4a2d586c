import { printable } from '../util/text.js';
import { ChartRequestError } from './errors.js';
import { isVersionConstraint, MAX_VERSION_LENGTH } from './versions.js';

/**
 * One chart a run asked for, from `--chart` or the spec's `charts:` list:
 *
 * - `repo`: a classic repository (`index.yaml` over http or https) and a chart in it;
 * - `oci`: a chart in an OCI registry (`oci://HOST/PATH/NAME`);
 * - `local`: a chart folder or a `.tgz` on disk.
 *
 * `version` is an exact version or a semver range (Helm's syntax); absent, the
 * highest stable version. `values` are values files (paths) that apply to this
 * chart, in the order Helm would merge them.
 */
export type ChartRequest = RepoChartRequest | OciChartRequest | LocalChartRequest;

export interface RepoChartRequest {
  kind: 'repo';
  /** The repository URL, as given (`https://charts.example/stable/`). */
  source: string;
  name: string;
  version?: string;
  values: string[];
}

export interface OciChartRequest {
  kind: 'oci';
  /** `oci://HOST/PATH/NAME`, without the version. */
  source: string;
  /** The registry host (`ghcr.io`, `127.0.0.1:5000`). */
  registry: string;
  /** The repository on it (`bitnamicharts/redis`); its last part is the chart's name. */
  repository: string;
  name: string;
  version?: string;
  values: string[];
}

export interface LocalChartRequest {
  kind: 'local';
  /** A chart folder or a `.tgz`, as given. */
  source: string;
  values: string[];
}

/** The longest chart name accepted (a repository path component). */
export const MAX_CHART_NAME_LENGTH = 128;
const CHART_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Whether `name` is a chart name safe to use in a URL path, a repository and a message. */
export function isChartName(name: string): boolean {
  return name.length <= MAX_CHART_NAME_LENGTH && CHART_NAME.test(name);
}

/**
 * The words of the repeatable `--chart` option, in order: `URL NAME[@VERSION|RANGE]`
 * (two words), `oci://HOST/PATH/NAME[@VERSION|RANGE]`, or `PATH` (a folder or a
 * `.tgz`). Every request gets the same `values` files.
 */
export function parseChartArguments(words: string[], values: string[] = []): ChartRequest[] {
  const out: ChartRequest[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (/^https?:\/\//i.test(word)) {
      const chart = words[i + 1];
      if (chart === undefined || /^[a-z]+:\/\//i.test(chart) || chart.includes('/'))
        throw new ChartRequestError(
          `--chart ${printable(word, 120)}: a repository URL must be followed by the chart, e.g. --chart ${printable(word, 80)} metrics-server@3.13.1`,
        );
      out.push(repoRequest(word, chart, values, '--chart'));
      i++;
    } else if (/^oci:\/\//i.test(word)) {
      out.push(ociRequest(word, values, '--chart'));
    } else {
      out.push(localRequest(word, values, '--chart'));
    }
  }
  return out;
}

/** A classic repository request; `where` names the option or spec entry in messages. */
export function repoRequest(url: string, chart: string, values: string[], where: string): RepoChartRequest {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ChartRequestError(`${where} ${printable(url, 120)}: not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new ChartRequestError(`${where} ${printable(url, 120)}: a chart repository URL must be http or https`);
  if (parsed.search || parsed.hash || parsed.username || parsed.password)
    throw new ChartRequestError(
      `${where} ${printable(url, 120)}: a repository URL holds scheme, host, port and path only (credentials go in the auth file or --username)`,
    );
  const { name, version } = nameAndVersion(chart, `${where} ${printable(url, 120)}`);
  return { kind: 'repo', source: url, name, ...(version !== undefined ? { version } : {}), values };
}

/** An `oci://HOST/PATH/NAME[@VERSION]` request. */
export function ociRequest(word: string, values: string[], where: string): OciChartRequest {
  const rest = word.slice('oci://'.length);
  const at = rest.lastIndexOf('@');
  const path = at >= 0 ? rest.slice(0, at) : rest;
  const slash = path.indexOf('/');
  const registry = slash > 0 ? path.slice(0, slash).toLowerCase() : '';
  const repository = slash > 0 ? path.slice(slash + 1) : '';
  const what = `${where} ${printable(word, 160)}`;
  if (
    !/^[a-z0-9.-]+(:\d{1,5})?$/.test(registry) ||
    !/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(repository)
  )
    throw new ChartRequestError(
      `${what}: expected oci://HOST/PATH/NAME@VERSION (lower-case repository), e.g. oci://ghcr.io/org/charts/app@1.2.3`,
    );
  const { name, version } = nameAndVersion(
    repository.slice(repository.lastIndexOf('/') + 1) + (at >= 0 ? rest.slice(at) : ''),
    what,
  );
  return {
    kind: 'oci',
    source: `oci://${registry}/${repository}`,
    registry,
    repository,
    name,
    ...(version !== undefined ? { version } : {}),
    values,
  };
}

export function localRequest(path: string, values: string[], where: string): LocalChartRequest {
  if (path === '' || path.startsWith('-'))
    throw new ChartRequestError(
      `${where} "${printable(path, 120)}": expected a chart folder, a .tgz, a repository URL or oci://`,
    );
  return { kind: 'local', source: path, values };
}

function nameAndVersion(text: string, what: string): { name: string; version?: string } {
  const at = text.indexOf('@');
  const name = at >= 0 ? text.slice(0, at) : text;
  const version = at >= 0 ? text.slice(at + 1) : undefined;
  if (!isChartName(name))
    throw new ChartRequestError(
      `${what}: "${printable(name, 80)}" is not a chart name (letters, digits, '.', '_', '-')`,
    );
  if (version !== undefined && (version.length > MAX_VERSION_LENGTH || !isVersionConstraint(version)))
    throw new ChartRequestError(
      `${what}: "${printable(version, 80)}" is neither a version nor a semver range (e.g. 3.13.1, 3.x, ">=1.2, <2")`,
    );
  return { name, ...(version !== undefined ? { version } : {}) };
}

/** The request as one line for messages: `metrics-server@3.13.1 from https://…`. */
export function describeRequest(req: ChartRequest): string {
  if (req.kind === 'local') return printable(req.source, 160);
  const v = req.version !== undefined ? `@${req.version}` : '';
  return req.kind === 'oci'
    ? printable(`${req.source}${v}`, 200)
    : printable(`${req.name}${v} from ${req.source}`, 200);
}
