import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { isValidDigest } from '../reference/reference.js';
import { RegistryError } from './errors.js';
import { parseListing } from './listings.js';
import type { Repository } from './repository.js';

const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

/**
 * The OCI 1.1 referrers API: digests of manifests whose `subject` is `digest`,
 * or undefined when the registry does not offer the API. An answer that is not
 * an index of descriptors fails with kind `malformed`.
 */
export async function listReferrers(repo: Repository, digest: string): Promise<string[] | undefined> {
  const what = `referrers of ${repo}@${digest}`;
  if (repo.traits.withoutReferrersApi) return undefined;
  return repo.retrying(what, async () => {
    const res = await repo.send(
      'pull',
      { method: 'GET', path: `referrers/${digest}`, headers: { accept: INDEX_MEDIA_TYPE } },
      what,
    );
    // A registry with the API answers 200 even when nothing refers to the digest: a 404 means no API, for every repository.
    if (res.status === 404) repo.traits.withoutReferrersApi = true;
    if (res.status !== 200 || !(res.headers.get('content-type') ?? '').includes(INDEX_MEDIA_TYPE)) {
      res.discard();
      return undefined;
    }
    return digestsOf(parseListing(await res.buffer(MAX_MANIFEST_BYTES), what), what);
  });
}

/** The valid digests of an index's `manifests`; an answer without that array is `malformed`. */
function digestsOf(index: Record<string, unknown>, what: string): string[] {
  if (!Array.isArray(index.manifests))
    throw new RegistryError('malformed', `${what}: the answer is not an index (no "manifests" array)`, { status: 200 });
  const digests: string[] = [];
  for (const m of index.manifests as unknown[]) {
    const d = typeof m === 'object' && m !== null ? (m as { digest?: unknown }).digest : undefined;
    if (typeof d === 'string' && isValidDigest(d)) digests.push(d);
  }
  return digests;
}
