import { createHash } from 'node:crypto';
import { isIndexType } from '../oci/media-types.js';
import { parseBoundedJson } from '../util/json.js';
import type { Repository } from '../registry/repository.js';
import {
  BUNDLE_V03_MEDIA_TYPE,
  bundleSignature,
  legacySignature,
  SIMPLE_SIGNING_MEDIA_TYPE,
  type CountersignKey,
} from '../signatures/countersign.js';

/**
 * Puts the cluster's own signature beside an image just imported, where
 * Talos (and cosign) look for it through the mirror, without touching a
 * signature the image came with:
 * 1. a referrer manifest (subject: the image) holding a Sigstore bundle v0.3;
 *    a registry without the referrers API learns of it through the
 *    `sha256-<hex>` fallback index, which gets it added to what it lists;
 * 2. the legacy `sha256-<hex>.sig` tag, only where the image has none.
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

export interface CountersignTarget {
  repo: Repository;
  /** The image's top-level manifest or index, as pushed. */
  image: { digest: string; mediaType: string; size: number };
  /** `registry/repository` the image is pulled as, for the signed statement. */
  name: string;
}

export interface Countersigned {
  referrer: string;
  /** The legacy tag, when the image had none and one was written. */
  legacy?: string;
}

export async function countersign(target: CountersignTarget, key: CountersignKey): Promise<Countersigned> {
  const referrer = await pushReferrer(target, key);
  await listInFallbackIndex(target, referrer);
  const legacy = await pushLegacyUnlessPresent(target, key);
  return { referrer: referrer.digest, ...(legacy ? { legacy } : {}) };
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function pushBlob(repo: Repository, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  if (!(await repo.hasBlob(digest))) await repo.uploadBlob(digest, bytes.length, () => bytes);
  return { digest, size: bytes.length };
}

async function pushManifest(repo: Repository, doc: unknown, tag?: string) {
  const bytes = Buffer.from(JSON.stringify(doc));
  const digest = sha256(bytes);
  await repo.putManifest(tag ?? digest, bytes, OCI_MANIFEST);
  return { mediaType: OCI_MANIFEST, digest, size: bytes.length };
}

async function pushReferrer({ repo, image, name }: CountersignTarget, key: CountersignKey) {
  const empty = await pushBlob(repo, Buffer.from('{}'));
  const bundle = await pushBlob(repo, bundleSignature(key, name, image.digest));
  return pushManifest(repo, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE_V03_MEDIA_TYPE,
    config: { mediaType: OCI_EMPTY, ...empty },
    layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, ...bundle }],
    subject: image,
    annotations: { 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' },
  });
}

/**
 * Where the registry has no referrers API, the `sha256-<hex>` tag holds an
 * index of the image's referrers: the new one is added to what it lists (the
 * carried upstream referrers stay), or the index is made.
 */
async function listInFallbackIndex(
  { repo, image }: CountersignTarget,
  referrer: { mediaType: string; digest: string; size: number },
): Promise<void> {
  if ((await repo.referrers(image.digest)) !== undefined) return;
  const tag = image.digest.replace(':', '-');
  const listed = await existingIndex(repo, tag);
  if (listed.some((m) => m.digest === referrer.digest)) return;
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [...listed, { ...referrer, artifactType: BUNDLE_V03_MEDIA_TYPE }],
    }),
  );
  await repo.putManifest(tag, bytes, OCI_INDEX);
}

/** The descriptors the fallback index lists now, or none when there is no such tag. */
async function existingIndex(repo: Repository, tag: string): Promise<Array<Record<string, unknown>>> {
  if (!(await repo.headManifest(tag))) return [];
  const got = await repo.getManifest(tag);
  const doc = parseBoundedJson(got.bytes) as { mediaType?: unknown; manifests?: unknown };
  if (!isIndexType(String(doc.mediaType ?? got.mediaType)) || !Array.isArray(doc.manifests)) return [];
  return doc.manifests.filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null);
}

async function pushLegacyUnlessPresent({ repo, image, name }: CountersignTarget, key: CountersignKey) {
  const tag = `${image.digest.replace(':', '-')}.sig`;
  if (await repo.headManifest(tag)) return undefined;
  const { payload, annotations } = legacySignature(key, name, image.digest);
  const layer = await pushBlob(repo, payload);
  const config = await pushBlob(
    repo,
    Buffer.from(
      JSON.stringify({
        architecture: '',
        config: {},
        created: '0001-01-01T00:00:00Z',
        os: '',
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
  );
  await pushManifest(
    repo,
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, ...config },
      layers: [{ mediaType: SIMPLE_SIGNING_MEDIA_TYPE, ...layer, annotations }],
    },
    tag,
  );
  return tag;
}
