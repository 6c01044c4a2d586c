import { parseDescriptor, type Descriptor } from '../oci/descriptor.js';
import { MediaType } from '../oci/media-types.js';
import { parseBoundedJson } from '../util/json.js';
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MAX_IMAGES, type ImageRecord } from './format.js';

/**
 * The OCI layout's `index.json`: one descriptor per image of the bundle, named
 * so skopeo and containerd find it. It lists every image, so it is bounded by
 * the bundle's image count, not by the much smaller limit of one image's index.
 */
export function buildIndex(images: ImageRecord[]): Buffer {
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map((im) => ({
      mediaType: im.mediaType,
      digest: im.digest,
      size: im.size,
      ...(namesOf(im) ? { annotations: namesOf(im) } : {}),
    })),
  };
  return Buffer.from(`${JSON.stringify(index, null, 2)}\n`);
}

/**
 * An image is named for OCI tools (`ref.name`) and for containerd
 * (`io.containerd.image.name`). A signature, attestation, SBOM or referrer is
 * listed without a name: it is no image to unpack, and `ctr images import`
 * (what k3s and RKE2 do with the tarballs in their `images/` folder) names and
 * unpacks every descriptor that has either name, failing the whole import on
 * the first it cannot unpack. It still travels in the bundle, and `import`
 * pushes it from the metadata.
 */
function namesOf(im: ImageRecord): Record<string, string> | undefined {
  if (im.artifact) return undefined;
  return { [ANNOTATION_CONTAINERD_NAME]: im.reference, [ANNOTATION_REF_NAME]: im.reference };
}

/** Reads `index.json` (already bounded in size by the reader) into its descriptors; throws on anything else. */
export function parseLayoutIndex(bytes: Buffer): Descriptor[] {
  const doc = parseBoundedJson(bytes) as { manifests?: unknown } | null;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.manifests))
    throw new Error('not an image index (no "manifests" list)');
  if (doc.manifests.length > MAX_IMAGES)
    throw new Error(`lists ${doc.manifests.length} images, more than the ${MAX_IMAGES} a bundle may hold`);
  return doc.manifests.map((m, i) => parseDescriptor(m, `index.json manifests[${i}]`));
}
