import type { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { mapSettled } from '../util/pool.js';

/**
 * Signatures, attestations and SBOMs live beside an image, found by the digest
 * they describe:
 * - cosign's tag conventions: `sha256-<hex>.sig`, `.att`, `.sbom`;
 * - OCI 1.1 referrers: the referrers API, or where a registry lacks it, the
 *   fallback tag `sha256-<hex>` holding an index of the referring manifests.
 * A verifier inside the air gap looks them up at exactly these places, so the
 * bundle carries them as the registry serves them.
 */
export type ArtifactKind = 'signature' | 'attestation' | 'sbom' | 'referrers' | 'referrer';

export interface FoundArtifact {
  /** A tag, or a digest for referrers the API reported. */
  selector: string;
  kind: ArtifactKind;
  /** Digest of the manifest the artifact describes. */
  subject: string;
}

const COSIGN_SUFFIXES: Array<[string, ArtifactKind]> = [
  ['.sig', 'signature'],
  ['.att', 'attestation'],
  ['.sbom', 'sbom'],
];

/** `sha256:<hex>` → `sha256-<hex>`: the tag form both conventions use. */
export function digestTag(digest: string): string {
  return digest.replace(':', '-');
}

export async function discoverArtifacts(client: RegistryClient, registry: string, repository: string, subjects: string[], concurrency: number): Promise<FoundArtifact[]> {
  const probes = subjects.flatMap((subject) => [
    ...COSIGN_SUFFIXES.map(([suffix, kind]) => ({ subject, tag: `${digestTag(subject)}${suffix}`, kind })),
    { subject, tag: digestTag(subject), kind: 'referrers' as const },
  ]);
  const found: FoundArtifact[] = [];
  const present = await presentTags(client, registry, repository, probes.map((p) => p.tag), concurrency);
  probes.forEach((p, i) => {
    if (present[i]) found.push({ selector: p.tag, kind: p.kind, subject: p.subject });
  });
  // Registries with the referrers API may hold referrers under no tag at all.
  const apis = await mapSettled(subjects, concurrency, (subject) => client.getReferrers(registry, repository, subject));
  apis.forEach((r, i) => {
    if (!r.ok) {
      if (r.error instanceof RegistryError) return; // no API, or refused: the tag fallback above covers it
      throw r.error;
    }
    for (const digest of r.value ?? []) found.push({ selector: digest, kind: 'referrer', subject: subjects[i]! });
  });
  return found;
}

/** Tag listings longer than this many pages of 1000 are not worth reading for a few probes. */
const MAX_TAG_PAGES = 3;

/**
 * Which of `tags` exist in the repository: one listing of its tags answers
 * every probe at once. A registry that will not list them, lists too many, or
 * lists none (a repository just read from is not empty: the listing is not
 * served) is asked tag by tag.
 */
async function presentTags(client: RegistryClient, registry: string, repository: string, tags: string[], concurrency: number): Promise<boolean[]> {
  try {
    const listed = await client.listTags(registry, repository, MAX_TAG_PAGES);
    if (listed.complete && listed.tags.length > 0) {
      const all = new Set(listed.tags);
      return tags.map((t) => all.has(t));
    }
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
  }
  const heads = await mapSettled(tags, concurrency, (tag) => client.headManifest(registry, repository, tag));
  return heads.map((h) => {
    if (!h.ok) throw h.error;
    return h.value !== undefined;
  });
}
