import { createHash } from 'node:crypto';
import { parseBoundedJson } from '../util/json.js';
import {
  BUNDLE_V03_MEDIA_TYPE,
  bundleSignature,
  legacySignature,
  SIMPLE_SIGNING_MEDIA_TYPE,
  type CountersignKey,
} from './countersign.js';

/**
 * The documents of a countersignature, built once for every place they go
 * (a registry at import, an image cache at talos-cache): the blobs, the
 * manifest that holds them, and the referrers index that lists a referrer.
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

export interface Document {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

/** A manifest and the blobs it needs, bytes in hand. */
export interface SignatureManifest {
  manifest: Document;
  blobs: Array<{ digest: string; bytes: Buffer }>;
}

export type Subject = { digest: string; mediaType: string; size: number };

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function blob(bytes: Buffer) {
  return { digest: sha256(bytes), size: bytes.length, bytes };
}

function document(doc: unknown, mediaType: string): Document {
  const bytes = Buffer.from(JSON.stringify(doc));
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

/** The OCI 1.1 referrer holding a Sigstore bundle v0.3 over `subject`, as Talos and cosign 3 read it. */
export function referrerManifest(key: CountersignKey, name: string, subject: Subject): SignatureManifest {
  const empty = blob(Buffer.from('{}'));
  const bundle = blob(bundleSignature(key, name, subject.digest));
  const manifest = document(
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: BUNDLE_V03_MEDIA_TYPE,
      config: { mediaType: OCI_EMPTY, digest: empty.digest, size: empty.size },
      layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, digest: bundle.digest, size: bundle.size }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: { 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' },
    },
    OCI_MANIFEST,
  );
  return { manifest, blobs: [empty, bundle] };
}

/** cosign's legacy `sha256-<hex>.sig` manifest: one simple-signing layer with its signature annotation. */
export function legacyManifest(key: CountersignKey, name: string, digest: string): SignatureManifest {
  const { payload, annotations } = legacySignature(key, name, digest);
  const layer = blob(payload);
  const config = blob(
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
  const manifest = document(
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: [{ mediaType: SIMPLE_SIGNING_MEDIA_TYPE, digest: layer.digest, size: layer.size, annotations }],
    },
    OCI_MANIFEST,
  );
  return { manifest, blobs: [layer, config] };
}

/**
 * The `sha256-<hex>` fallback index listing `referrer` after what it listed
 * already (the carried upstream referrers stay), or undefined when it lists
 * it already.
 */
export function withReferrer(listed: Array<Record<string, unknown>>, referrer: Document): Document | undefined {
  if (listed.some((m) => m.digest === referrer.digest)) return undefined;
  const entry = {
    mediaType: referrer.mediaType,
    digest: referrer.digest,
    size: referrer.size,
    artifactType: BUNDLE_V03_MEDIA_TYPE,
  };
  return document({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...listed, entry] }, OCI_INDEX);
}

/** The descriptors an index document lists, or none when it is no index. */
export function listedBy(bytes: Buffer): Array<Record<string, unknown>> {
  let doc: { mediaType?: unknown; manifests?: unknown };
  try {
    doc = parseBoundedJson(bytes) as typeof doc;
  } catch {
    return [];
  }
  if (!Array.isArray(doc.manifests)) return [];
  return doc.manifests.filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null);
}
