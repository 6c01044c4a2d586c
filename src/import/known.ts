import type { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import type { Repository } from '../registry/repository.js';
import { mapSettled } from '../util/pool.js';
import { printable } from '../util/text.js';

/**
 * Catalog pages read before an import: 100 pages of up to 1000 names. A
 * registry with more repositories than that is asked image by image instead,
 * so a shared registry's catalog never costs more memory than the bundle.
 */
const CATALOG_PAGES_FOR_IMPORT = 100;

/**
 * The repositories the registry holds, from its catalog, read once before an
 * import: a repository it does not list holds nothing yet, so its images and
 * blobs need not be asked about one by one (on an empty registry that is every
 * HEAD). Undefined when the catalog is not offered, refused, or larger than the
 * bound: every repository may then hold anything, and is asked.
 *
 * A catalog that lags behind (a repository it omits though it holds content)
 * costs only work: that content is pushed again, which registries accept.
 */
export async function listedRepositories(client: RegistryClient, registry: string): Promise<Set<string> | undefined> {
  try {
    return await client.listCatalog(registry, { maxPages: CATALOG_PAGES_FOR_IMPORT, complete: true });
  } catch (err) {
    if (err instanceof RegistryError) return undefined;
    throw err;
  }
}

/** The registry refuses pushes to repositories that do not exist yet; nothing was pushed. */
export class RepositoriesMissingError extends Error {
  override name = 'RepositoriesMissingError';
  constructor(registry: string, refused: Array<{ name: string; reason: string }>) {
    const projects = [...new Set(refused.map((r) => r.name.split('/')[0]!))];
    const shown = refused.slice(0, 20).map((r) => printable(r.name));
    super(
      `${registry} refuses pushes to ${refused.length} repositor${refused.length > 1 ? 'ies' : 'y'} that must exist first (${printable(refused[0]!.reason, 200)}); nothing was pushed. ` +
        `Create project${projects.length > 1 ? 's' : ''} ${projects.map((p) => printable(p)).join(', ')} (or the repositories ${shown.join(', ')}${refused.length > 20 ? ` and ${refused.length - 20} more` : ''}), or choose an existing project with --repo-prefix, then rerun`,
    );
  }
}

/**
 * Registries where a repository (or its project) must exist before a push
 * (Harbor, GitLab, ECR) refuse the first upload, so they are asked before
 * anything is pushed. A repository the catalog lists exists. Of the others,
 * one per top-level namespace (a Harbor project, a GitLab group) is asked
 * first: a registry that takes it creates repositories on push. Only when one
 * is refused are all of them asked, so every one to create is named at once.
 * Each probe opens and cancels an upload session (two requests).
 */
export async function requirePushable(
  registry: string,
  repositories: Repository[],
  listed: Set<string> | undefined,
  concurrency: number,
): Promise<void> {
  const unlisted = repositories.filter((r) => !listed?.has(r.name)).sort((a, b) => a.name.localeCompare(b.name));
  const firstOfNamespace = new Map<string, Repository>();
  for (const r of unlisted) if (!firstOfNamespace.has(namespace(r.name))) firstOfNamespace.set(namespace(r.name), r);
  const sample = [...firstOfNamespace.values()];
  let refused = await probe(sample, concurrency);
  if (refused.length > 0) {
    const rest = unlisted.filter((r) => !sample.includes(r));
    refused = [...refused, ...(await probe(rest, concurrency))].sort((a, b) => a.name.localeCompare(b.name));
    throw new RepositoriesMissingError(registry, refused);
  }
}

const namespace = (name: string) => name.split('/')[0]!;

async function probe(
  repositories: Repository[],
  concurrency: number,
): Promise<Array<{ name: string; reason: string }>> {
  const probes = await mapSettled(repositories, concurrency, (r) => r.probePush());
  const refused: Array<{ name: string; reason: string }> = [];
  probes.forEach((r, i) => {
    if (!r.ok) throw r.error;
    if (r.value !== undefined) refused.push({ name: repositories[i]!.name, reason: r.value });
  });
  return refused;
}
