import type { Repository } from '../registry/repository.js';
import type { CountersignKey } from '../signatures/countersign.js';
import {
  legacyManifest,
  listedBy,
  referrerManifest,
  withReferrer,
  type SignatureManifest,
  type Subject,
} from '../signatures/countersign-documents.js';

/**
 * Puts the cluster's own signature beside an image just imported, where
 * Talos (and cosign) look for it through the mirror, without touching a
 * signature the image came with:
 * 1. a referrer manifest (subject: the image) holding a Sigstore bundle v0.3;
 *    a registry without the referrers API learns of it through the
 *    `sha256-<hex>` fallback index, which gets it added to what it lists;
 * 2. the legacy `sha256-<hex>.sig` tag, only where the image has none.
 */

export interface CountersignTarget {
  repo: Repository;
  /** The image's top-level manifest or index, as pushed. */
  image: Subject;
  /** `registry/repository` the image is pulled as, for the signed statement. */
  name: string;
}

export interface Countersigned {
  referrer: string;
  /** The legacy tag, when the image had none and one was written. */
  legacy?: string;
}

export async function countersign(
  { repo, image, name }: CountersignTarget,
  key: CountersignKey,
): Promise<Countersigned> {
  const referrer = referrerManifest(key, name, image);
  await push(repo, referrer, referrer.manifest.digest);
  await listInFallbackIndex(repo, image, referrer);
  const tag = `${image.digest.replace(':', '-')}.sig`;
  if (await repo.headManifest(tag)) return { referrer: referrer.manifest.digest };
  await push(repo, legacyManifest(key, name, image.digest), tag);
  return { referrer: referrer.manifest.digest, legacy: tag };
}

/** Blobs first (those the registry lacks), then the manifest under `selector`. */
async function push(repo: Repository, signature: SignatureManifest, selector: string): Promise<void> {
  for (const b of signature.blobs)
    if (!(await repo.hasBlob(b.digest))) await repo.uploadBlob(b.digest, b.bytes.length, () => b.bytes);
  await repo.putManifest(selector, signature.manifest.bytes, signature.manifest.mediaType);
}

/**
 * Where the registry has no referrers API, the `sha256-<hex>` tag holds an
 * index of the image's referrers: the new one is added to what it lists (the
 * carried upstream referrers stay), or the index is made.
 */
async function listInFallbackIndex(repo: Repository, image: Subject, referrer: SignatureManifest): Promise<void> {
  if ((await repo.referrers(image.digest)) !== undefined) return;
  const tag = image.digest.replace(':', '-');
  const listed = (await repo.headManifest(tag)) ? listedBy((await repo.getManifest(tag)).bytes) : [];
  const index = withReferrer(listed, referrer.manifest);
  if (index) await repo.putManifest(tag, index.bytes, index.mediaType);
}
