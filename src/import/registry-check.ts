import type { RegistryClient } from '../registry/client.js';
import { mapSettled } from '../util/pool.js';
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
  const catalog = await client.listCatalog(registry).catch(() => undefined);
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
