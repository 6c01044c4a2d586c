import type { RegistryClient } from '../registry/client.js';
import { mapSettled } from '../util/pool.js';
import { RegistryError } from '../registry/errors.js';
import type { ImportPlan } from './plan.js';

export interface CheckRow {
  reference: string;
  repository: string;
  /** Tag, or the digest for digest-only references. */
  selector: string;
  expected: string;
  found: string | undefined;
  status: 'ok' | 'missing' | 'differs' | 'incomplete' | 'error';
  detail?: string;
}

export interface RegistryCheck {
  registry: string;
  catalog: 'listed' | 'unavailable';
  /** Repositories the bundle needs that the catalog does not list. */
  unlisted: string[];
  rows: CheckRow[];
  ok: boolean;
}

/** Page size for `/v2/_catalog`; Distribution refuses more than 1000 (or its `catalog.maxentries`). */
const CATALOG_PAGE = 1000;
const MAX_CATALOG_PAGES = 10_000;

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
  opts: { maxPages?: number; complete?: boolean } = {},
): Promise<Set<string> | undefined> {
  for (let size = CATALOG_PAGE; size >= 1; size = Math.floor(size / 2)) {
    const repos = await catalogPages(client, registry, size, opts.maxPages ?? MAX_CATALOG_PAGES);
    if (repos === 'page-size') continue;
    if (repos === undefined) return undefined;
    return repos.complete || !opts.complete ? repos.names : undefined;
  }
  return undefined;
}

async function catalogPages(
  client: RegistryClient,
  registry: string,
  size: number,
  maxPages: number,
): Promise<{ names: Set<string>; complete: boolean } | undefined | 'page-size'> {
  const repos = new Set<string>();
  let next: string | undefined = `/v2/_catalog?n=${size}`;
  for (let page = 0; next && page < maxPages; page++) {
    let res: Awaited<ReturnType<RegistryClient['catalogPage']>>;
    try {
      res = await client.catalogPage(registry, next);
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

/**
 * Proves the registry serves the bundle: every repository listed, every tag and
 * digest-pinned reference resolving to the bundle's digest. `deep` also checks
 * every child manifest and blob in its repository.
 */
export async function checkRegistry(
  client: RegistryClient,
  registry: string,
  plan: ImportPlan,
  opts: { deep: boolean; concurrency: number },
): Promise<RegistryCheck> {
  const catalog = await listCatalog(client, registry).catch(() => undefined);
  const unlisted = catalog
    ? [...new Set(plan.images.map((p) => p.repository))].filter((r) => !catalog.has(r)).sort()
    : [];

  const probes = plan.images.flatMap((p) => {
    const selectors = p.tag !== undefined ? [p.tag, p.image.digest] : [p.image.digest];
    return selectors.map((selector) => ({ p, selector }));
  });
  // HEADs move no data: twice the transfers at once, as many as the connection pool holds.
  const results = await mapSettled(probes, opts.concurrency * 2, async ({ p, selector }): Promise<CheckRow> => {
    const base = { reference: p.image.reference, repository: p.repository, selector, expected: p.image.digest };
    const repo = client.repository(registry, p.repository);
    const head = await repo.headManifest(selector);
    if (!head) return { ...base, found: undefined, status: 'missing' };
    if (head.digest !== p.image.digest) return { ...base, found: head.digest, status: 'differs' };
    if (opts.deep && selector === p.image.digest) {
      const absent: string[] = [];
      for (const d of p.manifests) if (!(await repo.headManifest(d))) absent.push(d);
      for (const d of p.blobs) if (!(await repo.hasBlob(d))) absent.push(d);
      if (absent.length > 0)
        return { ...base, found: head.digest, status: 'incomplete', detail: `missing ${absent.join(', ')}` };
    }
    return { ...base, found: head.digest, status: 'ok' };
  });
  const rows = results.map((r, i) =>
    r.ok
      ? r.value
      : {
          reference: probes[i]!.p.image.reference,
          repository: probes[i]!.p.repository,
          selector: probes[i]!.selector,
          expected: probes[i]!.p.image.digest,
          found: undefined,
          status: 'error' as const,
          detail: (r.error as Error).message,
        },
  );
  return {
    registry,
    catalog: catalog ? 'listed' : 'unavailable',
    unlisted,
    rows,
    ok: unlisted.length === 0 && rows.every((r) => r.status === 'ok'),
  };
}
