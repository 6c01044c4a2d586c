import type { Repository } from '../registry/repository.js';
import { RegistryError } from '../registry/errors.js';
import { mapSettled } from '../util/pool.js';
import { printable } from '../util/text.js';

/**
 * Signatures, attestations and SBOMs live beside an image, found by the digest
 * they describe:
 * - cosign's tag conventions: `sha256-<hex>.sig`, `.att`, `.sbom`;
 * - OCI 1.1 referrers: the referrers API, or where a registry lacks it, the
 *   fallback tag `sha256-<hex>` holding an index of the referring manifests.
 * A verifier inside the air gap looks them up at exactly these places, so the
 * bundle carries them as the registry serves them.
 *
 * Finding them is optional: a listing that is broken, oversized or hostile
 * costs a warning and the artifacts it would have shown, never the export.
 */
export type ArtifactKind = 'signature' | 'attestation' | 'sbom' | 'referrers' | 'referrer';

export interface FoundArtifact {
  /** A tag, or a digest for referrers the API reported. */
  selector: string;
  kind: ArtifactKind;
  /** Digest of the manifest the artifact describes. */
  subject: string;
}

export interface Discovery {
  /** Tag-found artifacts in probe order (subject, then suffix), then API referrers by digest: a stable order. */
  found: FoundArtifact[];
  /** One line each, registry strings escaped: what could not be looked up, and what is left out for it. */
  warnings: string[];
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

/** Looks up the artifacts of `subjects` (manifests of the image `image`) in one repository. */
export async function discoverArtifacts(
  repo: Repository,
  subjects: string[],
  concurrency: number,
  image: string,
): Promise<Discovery> {
  const where = `${printable(repo.registry)}/${printable(repo.name)}`;
  const warnings: string[] = [];
  const probes = subjects.flatMap((subject) => [
    ...COSIGN_SUFFIXES.map(([suffix, kind]) => ({ subject, tag: `${digestTag(subject)}${suffix}`, kind })),
    { subject, tag: digestTag(subject), kind: 'referrers' as const },
  ]);
  const found: FoundArtifact[] = [];
  const present = await presentTags(
    repo,
    probes.map((p) => p.tag),
    concurrency,
    (w) => warnings.push(`signatures of ${printable(image)}: ${w}`),
    where,
  );
  probes.forEach((p, i) => {
    if (present[i]) found.push({ selector: p.tag, kind: p.kind, subject: p.subject });
  });
  // Registries with the referrers API may hold referrers under no tag at all.
  const apis = await mapSettled(subjects, concurrency, (subject) => repo.referrers(subject));
  const referrers: FoundArtifact[] = [];
  apis.forEach((r, i) => {
    if (!r.ok) {
      // No API, or refused: the fallback tag above covers it. A broken answer is worth a word.
      if (!(r.error instanceof RegistryError) || r.error.kind === 'malformed') {
        warnings.push(
          `referrers of ${printable(image)}: the referrers listing of ${where} for ${subjects[i]} is unusable (${reason(r.error)}); those referrers are left out`,
        );
      }
      return;
    }
    for (const digest of r.value ?? []) referrers.push({ selector: digest, kind: 'referrer', subject: subjects[i]! });
  });
  referrers.sort((a, b) => (a.selector < b.selector ? -1 : a.selector > b.selector ? 1 : 0));
  for (const r of referrers) found.push(r);
  return { found, warnings };
}

/** Tag listings longer than this many pages of 1000 are not worth reading for a few probes. */
const MAX_TAG_PAGES = 3;
/** Tags read from a listing at most, however the registry pages them. */
const MAX_LISTED_TAGS = 10_000;

/**
 * Which of `tags` exist in the repository: one listing of its tags answers
 * every probe at once. A registry that will not list them, lists too many, or
 * lists none (a repository just read from is not empty: the listing is not
 * served) is asked tag by tag; so is one whose listing is broken, with a
 * warning. Probes that fail count as absent, with a warning.
 */
async function presentTags(
  repo: Repository,
  tags: string[],
  concurrency: number,
  warn: (message: string) => void,
  where: string,
): Promise<boolean[]> {
  try {
    const listed = await repo.listTags(MAX_TAG_PAGES, MAX_LISTED_TAGS);
    if (listed.complete && listed.tags.length > 0) {
      const all = new Set(listed.tags);
      return tags.map((t) => all.has(t));
    }
  } catch (err) {
    if (!(err instanceof RegistryError) || err.kind === 'malformed')
      warn(`the tag listing of ${where} is unusable (${reason(err)}); looking them up tag by tag`);
  }
  const heads = await mapSettled(tags, concurrency, (tag) => repo.headManifest(tag));
  const failed = heads.find((h): h is { ok: false; error: unknown } => !h.ok);
  if (failed)
    warn(
      `${heads.filter((h) => !h.ok).length} of ${tags.length} tags could not be looked up on ${where} (${reason(failed.error)}); those are left out`,
    );
  return heads.map((h) => h.ok && h.value !== undefined);
}

function reason(err: unknown): string {
  return printable(err instanceof Error ? err.message : String(err), 200);
}
