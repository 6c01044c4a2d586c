import type { CheckedFile } from '../bundle/open/structure.js';
import type { ImageRecord } from '../bundle/format.js';
import { bundleSignatureSource } from '../signatures/bundle-source.js';
import { checkSignatures, failsPolicy, type SignatureOptions } from '../signatures/check-images.js';
import type { CountersignKey } from '../signatures/countersign.js';
import { legacyManifest, referrerManifest } from '../signatures/countersign-documents.js';
import { SignaturePolicyRefusal } from '../signatures/errors.js';
import type { ServedContent } from './content.js';
import type { ServedUnit } from './units.js';

/** What serve's signature check found: the images it verified, and how many of them it countersigned. */
export interface ServedSignatures {
  checked: number;
  verified: number;
  countersigned: number;
}

/**
 * Every served image against the policy, offline, from the signatures the
 * bundles carry: one that fails refuses the start (exit 5, nothing served).
 * With a key, each verified image is then signed for the cluster, the
 * signatures made here once and held in memory for as long as serve runs.
 */
export async function checkServedSignatures(
  files: CheckedFile[],
  units: ServedUnit[],
  content: ServedContent,
  policy: SignatureOptions,
  key: CountersignKey | undefined,
): Promise<ServedSignatures> {
  const images = distinctImages(units);
  const results = await checkSignatures(images, bundleSignatureSource(files), policy);
  const failed = results.filter(failsPolicy);
  if (failed.length > 0) throw new SignaturePolicyRefusal(failed, results.length, 'nothing is served');
  const verified = new Set(results.filter((r) => r.status === 'verified').map((r) => r.reference));
  let countersigned = 0;
  if (key) {
    for (const image of images) {
      if (!verified.has(image.reference)) continue;
      content.countersign(image, countersignature(key, image));
      countersigned++;
    }
  }
  return { checked: results.length, verified: verified.size, countersigned };
}

/** The images of every unit, each reference once (the volumes of a set repeat them). */
function distinctImages(units: ServedUnit[]): ImageRecord[] {
  const seen = new Map<string, ImageRecord>();
  for (const u of units) for (const im of u.metadata.images) if (!seen.has(im.reference)) seen.set(im.reference, im);
  return [...seen.values()];
}

/** Signed as the node asks for the image: its source registry and repository, as talos-cache signs. */
function countersignature(key: CountersignKey, image: ImageRecord) {
  const name = `${image.registry}/${image.repository}`;
  const subject = { digest: image.digest, mediaType: image.mediaType, size: image.size };
  return { referrer: referrerManifest(key, name, subject), legacy: legacyManifest(key, name, image.digest) };
}
