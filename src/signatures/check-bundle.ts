import type { BlobLocation } from '../bundle/blob-ranges.js';
import { readSmallBlob } from '../bundle/blob-ranges.js';
import type { BundleMetadata, ImageRecord } from '../bundle/format.js';
import type { BlobSeen } from '../bundle/open/blob-check.js';
import { printable } from '../util/text.js';
import { SignatureFormatError } from './cosign-bundle.js';
import { ruleFor, type Policy, type PolicyRule } from './policy.js';
import { SignatureRefused, verifyCosignSignature, type TrustRoot, type VerifiedSignature } from './verify-signature.js';

/**
 * Every image of a bundle against a signature policy, from what the bundle
 * carries, offline: the signatures travel as the artifacts export found beside
 * each image (cosign's `sha256-<hex>.sig`), and each is checked against the
 * rule that decides for the image, for the image's top-level digest (the index
 * of a multi-arch image), as Talos and cosign check it.
 */

export type SignatureStatus = 'verified' | 'skipped' | 'unmatched' | 'denied' | 'refused';

export interface ImageSignatures {
  reference: string;
  digest: string;
  status: SignatureStatus;
  /** The rule that decided, as `rules[N] GLOB`. */
  rule?: string;
  /** For a verified image: who signed, and the signature manifest that proves it. */
  verified?: VerifiedSignature & { signature: string };
  reason?: string;
}

/** A simple-signing payload is a few hundred bytes; anything far larger is not one. */
const MAX_PAYLOAD_BYTES = 64 * 1024;

/** Where the bundle's files hold each blob, and what the gate found in each document. */
export interface CarriedBlobs {
  locate(digest: string): { path: string; at: BlobLocation } | undefined;
  seen: Map<string, BlobSeen>;
}

export interface SignatureOptions {
  policy: Policy;
  trust: TrustRoot;
  /** An image no rule matches is refused instead of passing unverified. */
  requireSignatures: boolean;
}

export async function checkSignatures(
  metadata: BundleMetadata,
  blobs: CarriedBlobs,
  opts: SignatureOptions,
): Promise<ImageSignatures[]> {
  const out: ImageSignatures[] = [];
  for (const image of metadata.images) {
    if (image.artifact) continue;
    out.push(await judgeImage(image, signaturesOf(metadata, image), blobs, opts));
  }
  return out;
}

/**
 * The cosign signature manifests carried for this image's top-level digest,
 * from its own repository: where cosign and Talos look them up (the same
 * digest in another repository may be signed by someone else).
 */
function signaturesOf(metadata: BundleMetadata, image: ImageRecord): ImageRecord[] {
  return metadata.images.filter(
    (a) =>
      a.artifact?.kind === 'signature' &&
      a.artifact.subject === image.digest &&
      a.registry === image.registry &&
      a.repository === image.repository,
  );
}

async function judgeImage(
  image: ImageRecord,
  signatures: ImageRecord[],
  blobs: CarriedBlobs,
  opts: SignatureOptions,
): Promise<ImageSignatures> {
  const base = { reference: image.reference, digest: image.digest };
  const rule = ruleFor(opts.policy, `${image.registry}/${image.repository}`);
  if (!rule)
    return opts.requireSignatures
      ? { ...base, status: 'refused', reason: 'no rule of the policy matches it, and --require-signatures is given' }
      : { ...base, status: 'unmatched' };
  const named = { ...base, rule: `rules[${rule.index}] ${printable(rule.image)}` };
  if (rule.action === 'skip') return { ...named, status: 'skipped' };
  if (rule.action === 'deny') return { ...named, status: 'denied', reason: 'the policy denies it' };
  if (signatures.length === 0) return { ...named, status: 'refused', reason: 'the bundle carries no signature for it' };
  const reasons: string[] = [];
  for (const sig of signatures) {
    const found = await verifyOne(image, sig, rule, blobs, opts.trust).catch((err: unknown) => {
      if (!(err instanceof SignatureRefused) && !(err instanceof SignatureFormatError)) throw err;
      reasons.push(err.message);
      return undefined;
    });
    if (found) return { ...named, status: 'verified', verified: { ...found, signature: sig.digest } };
  }
  return { ...named, status: 'refused', reason: [...new Set(reasons)].slice(0, 3).join('; ') };
}

/** Any layer of one signature manifest that verifies under the rule. */
async function verifyOne(
  image: ImageRecord,
  sig: ImageRecord,
  rule: Extract<PolicyRule, { action: 'verify' }>,
  blobs: CarriedBlobs,
  trust: TrustRoot,
): Promise<VerifiedSignature | undefined> {
  const manifest = blobs.seen.get(sig.digest)?.parsed;
  if (manifest?.kind !== 'image')
    throw new SignatureRefused(`signature ${sig.digest} is not a manifest of signature layers`);
  let last: Error | undefined;
  for (const layer of manifest.layers) {
    const where = blobs.locate(layer.digest);
    const payload = where ? await readSmallBlob(where.path, layer.digest, where.at, MAX_PAYLOAD_BYTES) : undefined;
    if (!payload) {
      last = new SignatureRefused(`the payload ${layer.digest} of signature ${sig.digest} is not in the bundle intact`);
      continue;
    }
    try {
      return verifyCosignSignature(payload, layer.annotations ?? {}, image.digest, rule.signer, trust);
    } catch (err) {
      if (!(err instanceof SignatureRefused) && !(err instanceof SignatureFormatError)) throw err;
      last = err;
    }
  }
  if (last) throw last;
  return undefined;
}
