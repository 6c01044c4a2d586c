import { isValidRepositoryPath, isValidTag } from '../reference/reference.js';
import { parseBoundedJson } from '../util/json.js';
import type { RegistryClient } from './client.js';
import type { Endpoint } from './endpoint.js';
import { RegistryError } from './errors.js';
import type { HttpResponse } from './http.js';
import { originOf, sameOriginUrl } from './origin.js';
import type { Repository } from './repository.js';
import { expectStatus, firstError, readErrorText } from './status.js';

/** Listings (tags, catalog) are small JSON documents; this bounds what one page may cost. */
const MAX_LISTING_BYTES = 16 * 1024 * 1024;
/** Page size for `/v2/_catalog`; Distribution refuses more than 1000 (or its `catalog.maxentries`). */
const CATALOG_PAGE = 1000;
const MAX_CATALOG_PAGES = 10_000;

/**
 * Every tag of a repository, following `Link` pagination on the registry's
 * own origin; `complete` is false when `maxPages` pages did not reach the end.
 * Entries that are not tags are skipped; an answer that is not a listing,
 * holds more than `maxTags` tags, or links its next page elsewhere fails with
 * kind `malformed`.
 */
export async function listTags(
  repo: Repository,
  maxPages = 10_000,
  maxTags = maxPages * 1000,
): Promise<{ tags: string[]; complete: boolean }> {
  const what = `tags of ${repo}`;
  const tags: string[] = [];
  let next: string | undefined = `${repo.endpoint.baseUrl}/v2/${repo.path}/tags/list?n=1000`;
  for (let page = 0; next; page++) {
    if (page >= maxPages) return { tags, complete: false };
    const url: string = next;
    const res = await repo.retrying(what, () => repo.sendTo('pull', { method: 'GET', url }, what));
    if (res.status === 404) {
      res.discard();
      return { tags, complete: true };
    }
    expectStatus(res, [200], what);
    const body = parseListing(await res.buffer(MAX_LISTING_BYTES), what);
    // Distribution answers "tags": null for a repository whose last tag was deleted.
    const listed = body.tags === null || body.tags === undefined ? [] : stringsOf(body.tags, what, 'tags', isValidTag);
    // Pages are asked for 1000 at a time: a registry that answers far more at once is not paging, it is flooding.
    if (tags.length + listed.length > maxTags)
      throw new RegistryError('malformed', `${what}: the listing holds more than ${maxTags} tags`, { status: 200 });
    for (const t of listed) tags.push(t);
    next = nextPage(res, repo.endpoint, what)?.href;
  }
  return { tags, complete: true };
}

export interface CatalogOptions {
  /** Pages read at most (of up to 1000 names each). */
  maxPages?: number;
  /** Undefined rather than the names read when `maxPages` pages did not reach the end. */
  complete?: boolean;
}

/**
 * Reads the whole catalog, following `Link` headers. A page size the registry
 * refuses (400 `PAGINATION_NUMBER_INVALID`: a smaller `catalog.maxentries`) is
 * halved until it is accepted. Returns undefined when the registry does not
 * offer the catalog (disabled, unsupported, or restricted to admins: 401, 403,
 * 404, 405 and the like), and, with `complete`, when `maxPages` pages did not
 * reach its end (otherwise what those pages listed).
 */
export async function listCatalog(
  client: RegistryClient,
  registry: string,
  opts: CatalogOptions = {},
): Promise<Set<string> | undefined> {
  for (let size = CATALOG_PAGE; size >= 1; size = Math.floor(size / 2)) {
    const repos = await catalogPages(client, registry, size, opts.maxPages ?? MAX_CATALOG_PAGES);
    if (repos === 'page-size') continue;
    if (repos === undefined) return undefined;
    return repos.complete || !opts.complete ? repos.names : undefined;
  }
  return undefined;
}

/** The catalog in pages of `size`: the names, undefined when it is not offered, or 'page-size' when `size` is refused. */
async function catalogPages(
  client: RegistryClient,
  registry: string,
  size: number,
  maxPages: number,
): Promise<{ names: Set<string>; complete: boolean } | undefined | 'page-size'> {
  const repos = new Set<string>();
  let next: string | undefined = `/v2/_catalog?n=${size}`;
  for (let page = 0; next && page < maxPages; page++) {
    let res: CatalogPage;
    try {
      res = await catalogPage(client, registry, next);
    } catch (err) {
      // A catalog restricted to others (no token for it, or denied) is a catalog this account cannot read.
      if (err instanceof RegistryError && err.kind === 'auth') return undefined;
      throw err;
    }
    if (res.status === 400 && res.code === 'PAGINATION_NUMBER_INVALID') return 'page-size';
    if (res.status !== 200) return undefined;
    for (const r of res.repositories) repos.add(r);
    next = res.next;
  }
  return { names: repos, complete: next === undefined };
}

interface CatalogPage {
  repositories: string[];
  /** Path and query of the next page, on the registry's own origin. */
  next: string | undefined;
  status: number;
  /** The error code of a 400, which tells a refused page size from a catalog not offered. */
  code?: string | undefined;
}

/** One page of `/v2/_catalog` at `pathAndQuery`. */
async function catalogPage(client: RegistryClient, registry: string, pathAndQuery: string): Promise<CatalogPage> {
  const what = `catalog of ${registry}`;
  const ep = client.endpoint(registry);
  const url = sameOriginUrl(ep, pathAndQuery, what);
  return client.retrying(what, async () => {
    const res = await client.send(ep, 'registry:catalog:*', { method: 'GET', url }, what);
    if (res.status !== 200) {
      const text = res.status === 400 ? await readErrorText(res) : (res.discard(), '');
      return { repositories: [], next: undefined, status: res.status, code: firstError(text)?.code };
    }
    const body = parseListing(await res.buffer(MAX_LISTING_BYTES), what);
    const repositories = stringsOf(body.repositories, what, 'repositories', isValidRepositoryPath);
    const next = nextPage(res, ep, what);
    return { repositories, next: next && `${next.pathname}${next.search}`, status: 200 };
  });
}

/** The `rel="next"` page of a paginated listing, on the registry's own origin. */
function nextPage(res: HttpResponse, ep: Endpoint, what: string): URL | undefined {
  const link = res.headers.get('link');
  const target = link ? /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
  if (target === undefined) return undefined;
  // A relative link is relative to the page it came with.
  return new URL(sameOriginUrl(ep, target, what, originOf(res.url) ? res.url : ep.baseUrl));
}

/** A JSON object, or a `malformed` error naming what was asked. */
export function parseListing(bytes: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseBoundedJson(bytes);
  } catch {
    throw new RegistryError('malformed', `${what}: the registry answered something that is not JSON`, { status: 200 });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new RegistryError('malformed', `${what}: the registry answered JSON that is not an object`, { status: 200 });
  return doc as Record<string, unknown>;
}

/** The strings of a JSON array that pass `valid`; not an array is `malformed`. */
function stringsOf(value: unknown, what: string, field: string, valid: (s: string) => boolean): string[] {
  if (!Array.isArray(value))
    throw new RegistryError('malformed', `${what}: "${field}" is not an array`, { status: 200 });
  const out: string[] = [];
  for (const v of value as unknown[]) if (typeof v === 'string' && valid(v)) out.push(v);
  return out;
}
