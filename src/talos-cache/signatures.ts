import { parseManifest } from '../oci/manifest.js';
import { MAX_PAYLOAD_BYTES, type SignatureSource } from '../signatures/check-images.js';
import type { CountersignKey } from '../signatures/countersign.js';
import { legacyManifest, referrerManifest } from '../signatures/countersign-documents.js';
import type { BundleMetadata } from '../bundle/format.js';
import type { CacheCountersign } from './plan.js';
import type { BundleSource } from './source.js';

/** Signatures as the bundles given to talos-cache carry them: manifests as read, payloads hashed as they are read. */
export function cacheSignatureSource(source: BundleSource, metadata: BundleMetadata): SignatureSource {
  const types = new Map(metadata.blobs.map((b) => [b.digest, b.mediaType]));
  return {
    manifest: (digest) => {
      try {
        return parseManifest(source.manifest(digest), types.get(digest), digest);
      } catch {
        return undefined;
      }
    },
    payload: async (digest) => {
      const parts: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of source.blob(digest)) {
          size += chunk.length;
          if (size > MAX_PAYLOAD_BYTES) return undefined;
          parts.push(Buffer.from(chunk));
        }
      } catch {
        // Damaged or absent: the signature it belongs to cannot be checked.
        return undefined;
      }
      return Buffer.concat(parts);
    },
  };
}

/** The cluster's signature of each verified image, made with `key` as the plan lays it out. */
export function cacheCountersign(key: CountersignKey, verified: Set<string>): CacheCountersign {
  const subject = (image: { digest: string; mediaType: string; size: number }) => ({
    digest: image.digest,
    mediaType: image.mediaType,
    size: image.size,
  });
  return {
    verified,
    referrer: (image) => referrerManifest(key, `${image.registry}/${image.repository}`, subject(image)),
    legacy: (image) => legacyManifest(key, `${image.registry}/${image.repository}`, image.digest),
  };
}
