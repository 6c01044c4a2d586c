import { isValidDigest, isValidRepositoryPath, isValidTag, unsupportedDigest } from '../reference/reference.js';
import { isRegistryHost } from '../reference/mapping.js';
import { RegistryProblem } from './errors.js';
import { isPlainFileName } from '../bundle/carried.js';
import { parseChartRoute, type ChartRoute } from './charts.js';

/**
 * What a request asks for, parsed from the raw request target. Every string
 * in a route has passed the distribution grammar, so it can be looked up,
 * logged and echoed in a `Link` header as it is.
 */
export type Route =
  | { kind: 'base' }
  | { kind: 'catalog'; page: PageQuery }
  | { kind: 'tags'; name: string; ns: string | undefined; page: PageQuery }
  | { kind: 'manifest'; name: string; ns: string | undefined; reference: ManifestReference }
  | { kind: 'blob'; name: string; ns: string | undefined; digest: string }
  | { kind: 'referrers'; name: string; ns: string | undefined; digest: string; artifactType: string | undefined }
  | { kind: 'upload' }
  /** `/files/` (the index, no name) or `/files/NAME`: a carried file (src/serve/files.ts). */
  | { kind: 'files'; name: string | undefined }
  /** `/charts/index.yaml` or `/charts/NAME-VERSION.tgz`: the classic chart repository (src/serve/charts.ts). */
  | { kind: 'charts'; chart: ChartRoute };

export type ManifestReference = { tag: string } | { digest: string };

export interface PageQuery {
  /** Page size, or undefined for everything. */
  n: number | undefined;
  /** Answer only entries after this one. */
  last: string | undefined;
}

/** Longest request target considered at all: real ones stay under 300 characters. */
export const MAX_TARGET_LENGTH = 2048;
/** Largest page a client may ask for; bigger `n` are answered with this many. */
export const MAX_PAGE = 10_000;

const NAMED = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/;
const TAGS = /^\/v2\/(.+)\/tags\/list$/;
const UPLOAD = /^\/v2\/(.+)\/blobs\/uploads(\/.*)?$/;

/**
 * Parses a request target (`/v2/NAME/manifests/REF?ns=docker.io`). Names are
 * never percent-decoded: no valid repository name needs encoding, so an
 * encoded one is refused rather than decoded into something else.
 */
export function parseRoute(target: string): Route {
  if (target.length > MAX_TARGET_LENGTH) throw new RegistryProblem('NAME_INVALID', 'request target too long');
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = queryOf(q < 0 ? '' : target.slice(q + 1));
  if (path === '/v2/' || path === '/v2') return { kind: 'base' };
  if (path === '/files' || path.startsWith('/files/')) return { kind: 'files', name: fileName(path) };
  if (path === '/charts' || path.startsWith('/charts/')) return { kind: 'charts', chart: parseChartRoute(path) };
  if (path === '/v2/_catalog') return { kind: 'catalog', page: pageQuery(query) };
  if (UPLOAD.test(path)) return { kind: 'upload' };
  const tags = TAGS.exec(path);
  if (tags) return { kind: 'tags', name: repositoryName(tags[1]!), ns: namespace(query), page: pageQuery(query) };
  const named = NAMED.exec(path);
  if (!named) throw new RegistryProblem('NOT_FOUND', 'no such endpoint');
  const [, rawName, what, ref] = named as unknown as [string, string, string, string];
  const name = repositoryName(rawName);
  const ns = namespace(query);
  if (what === 'manifests') return { kind: 'manifest', name, ns, reference: manifestReference(ref) };
  if (what === 'blobs') return { kind: 'blob', name, ns, digest: digestOf(ref) };
  return { kind: 'referrers', name, ns, digest: digestOf(ref), artifactType: artifactTypeFilter(query) };
}

/**
 * Query parameters, percent-decoded. Unlike URLSearchParams, `+` stays a plus:
 * media types hold one (`application/vnd.oci.image.manifest.v1+json`) and
 * clients often send it unencoded. A parameter that does not decode is dropped.
 */
function queryOf(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of raw.split('&').slice(0, 32)) {
    const eq = pair.indexOf('=');
    try {
      const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      if (!out.has(key)) out.set(key, decodeURIComponent(eq < 0 ? '' : pair.slice(eq + 1)));
    } catch {
      // malformed percent-encoding: as if the parameter were absent
    }
  }
  return out;
}

/**
 * The name in `/files/NAME`, percent-decoded once (a file name may hold a
 * space), then held to the one rule for carried names: an encoded `/` or a
 * control character decodes into something no carried file is called.
 */
function fileName(path: string): string | undefined {
  const raw = path.slice('/files/'.length);
  if (raw === '') return undefined;
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw new RegistryProblem('NOT_FOUND', 'no such file');
  }
  if (!isPlainFileName(name)) throw new RegistryProblem('NOT_FOUND', 'no such file');
  return name;
}

function repositoryName(raw: string): string {
  if (!isValidRepositoryPath(raw)) throw new RegistryProblem('NAME_INVALID', 'invalid repository name');
  return raw;
}

function manifestReference(ref: string): ManifestReference {
  if (ref.includes(':')) return { digest: digestOf(ref) };
  if (!isValidTag(ref)) throw new RegistryProblem('MANIFEST_INVALID', 'invalid tag');
  return { tag: ref };
}

function digestOf(ref: string): string {
  if (isValidDigest(ref)) return ref;
  throw new RegistryProblem('DIGEST_INVALID', unsupportedDigest(ref) ?? 'invalid digest');
}

/**
 * containerd adds `?ns=<registry>` to every request it sends to a mirror: the
 * registry the image was asked from. A value that is not a registry host
 * matches nothing.
 */
function namespace(query: Map<string, string>): string | undefined {
  const ns = query.get('ns');
  if (ns === undefined) return undefined;
  if (!isRegistryHost(ns)) throw new RegistryProblem('NAME_INVALID', 'invalid ns parameter');
  return ns;
}

function pageQuery(query: Map<string, string>): PageQuery {
  const rawN = query.get('n');
  const last = query.get('last');
  if (last !== undefined && last.length > 256)
    throw new RegistryProblem('PAGINATION_NUMBER_INVALID', 'last is too long');
  if (rawN === undefined || rawN === '') return { n: undefined, last };
  if (!/^\d{1,9}$/.test(rawN)) throw new RegistryProblem('PAGINATION_NUMBER_INVALID', 'n must be a number');
  return { n: Math.min(Number(rawN), MAX_PAGE), last };
}

/** A media type as the OCI grammar allows it; anything else filters everything out. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

function artifactTypeFilter(query: Map<string, string>): string | undefined {
  const t = query.get('artifactType');
  if (t === undefined) return undefined;
  return MEDIA_TYPE.test(t) ? t : '\0';
}

export function isMediaType(s: string): boolean {
  return MEDIA_TYPE.test(s);
}
