import { mapSettled } from '../util/pool.js';
import type { ImageRecord } from '../bundle/format.js';
import type { ParsedManifest } from '../oci/manifest.js';
import { printable } from '../util/text.js';
import { SignatureFormatError, SignatureRefused } from './errors.js';
import { ruleFor, type Policy, type PolicyRule } from './policy.js';
import type { TrustRoot, VerifiedSignature } from './verify-signature.js';

/**
 * Every image against a signature policy: its signatures are the artifacts
 * found beside it (cosign's `sha256-<hex>.sig`), read from wherever they are —
 * the bundle on the isolated side, the registry at export — and each is
 * checked against the rule that decides for the image, for the image's
 * top-level digest (the index of a multi-arch image), as Talos and cosign check it.
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
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/** Where signature manifests and payloads are read from. */
export interface SignatureSource {
  /** A signature manifest, parsed, or undefined when it is not at hand. */
  manifest(digest: string): ParsedManifest | undefined;
  /** A payload's bytes (at most MAX_PAYLOAD_BYTES), checked against its digest; undefined when absent or damaged. */
  payload(digest: string): Promise<Buffer | undefined>;
}

export interface SignatureOptions {
  policy: Policy;
  trust: TrustRoot;
  /** An image no rule matches is refused instead of passing unverified. */
  requireSignatures: boolean;
}

/**
 * Each image of `images` (artifacts among them are the evidence, not judged
 * themselves; charts and files are no images a policy speaks of).
 */
export async function checkSignatures(
  images: ImageRecord[],
  source: SignatureSource,
  opts: SignatureOptions,
): Promise<ImageSignatures[]> {
  const artifacts = artifactsByImage(images);
  const judged = await mapSettled(
    images.filter((im) => !im.artifact && !im.carried),
    CHECKS_AT_ONCE,
    (image) => judgeImage(image, signaturesOf(artifacts.get(keyOf(image, image.digest)) ?? [], source), source, opts),
  );
  return judged.map((r) => {
    if (!r.ok) throw r.error;
    return r.value;
  });
}

/** Payloads are fetched or read while others are checked: the registry's round trips are what a check waits on. */
const CHECKS_AT_ONCE = 16;

/** Where an artifact belongs: the repository it was found in and the digest it describes. */
const keyOf = (im: ImageRecord, subject: string) => `${im.registry}/${im.repository}@${subject}`;

/** The artifacts of each image (same repository, its digest as subject), grouped in one pass. */
function artifactsByImage(images: ImageRecord[]): Map<string, ImageRecord[]> {
  const out = new Map<string, ImageRecord[]>();
  for (const a of images) {
    if (!a.artifact) continue;
    const key = keyOf(a, a.artifact.subject);
    out.set(key, [...(out.get(key) ?? []), a]);
  }
  return out;
}

/** Whether an image's verdict keeps it out: refused or denied. */
export function failsPolicy(s: ImageSignatures): boolean {
  return s.status === 'refused' || s.status === 'denied';
}

/** A signature manifest the image carries: cosign's legacy `.sig` manifest, or a Sigstore bundle referrer. */
interface Candidate {
  kind: 'cosign' | 'bundle';
  /** The manifest holding the signature layers. */
  digest: string;
}

const SIGSTORE_BUNDLE = /^application\/vnd\.dev\.sigstore\.bundle(\.v0\.[1-9])?\+json/;

/**
 * The signatures carried for this image's top-level digest, from its own
 * repository: where cosign and Talos look them up (the same digest in another
 * repository may be signed by someone else). Sigstore bundle referrers first
 * (found through the referrers API, or listed by the `sha256-<hex>` fallback
 * index), then the legacy `sha256-<hex>.sig` manifest, as Talos looks.
 */
function signaturesOf(own: ImageRecord[], source: SignatureSource): Candidate[] {
  const referrers = own.flatMap((a) => {
    if (a.artifact!.kind === 'referrer') return [a.digest];
    const index = a.artifact!.kind === 'referrers' ? source.manifest(a.digest) : undefined;
    return index?.kind === 'index' ? index.manifests.map((m) => m.digest) : [];
  });
  const bundles = referrers.filter((d) => {
    const m = source.manifest(d);
    return m?.kind === 'image' && m.layers.some((l) => SIGSTORE_BUNDLE.test(l.mediaType));
  });
  return [
    ...[...new Set(bundles)].map((digest) => ({ kind: 'bundle' as const, digest })),
    ...own.filter((a) => a.artifact!.kind === 'signature').map((a) => ({ kind: 'cosign' as const, digest: a.digest })),
  ];
}

async function judgeImage(
  image: ImageRecord,
  signatures: Candidate[],
  source: SignatureSource,
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
    const found = await verifyOne(image, sig, rule, source, opts.trust).catch((err: unknown) => {
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
  sig: Candidate,
  rule: Extract<PolicyRule, { action: 'verify' }>,
  source: SignatureSource,
  trust: TrustRoot,
): Promise<VerifiedSignature | undefined> {
  const manifest = source.manifest(sig.digest);
  if (manifest?.kind !== 'image')
    throw new SignatureRefused(`signature ${sig.digest} is not a manifest of signature layers`);
  // Sigstore's libraries are loaded only when a signature is checked: every other run starts without them.
  const { verifyCosignSignature, verifySigstoreBundle } = await import('./verify-signature.js');
  let last: Error | undefined;
  for (const layer of manifest.layers) {
    if (sig.kind === 'bundle' && !SIGSTORE_BUNDLE.test(layer.mediaType)) continue;
    const payload = layer.size <= MAX_PAYLOAD_BYTES ? await source.payload(layer.digest) : undefined;
    if (!payload) {
      last = new SignatureRefused(`the payload ${layer.digest} of signature ${sig.digest} cannot be read intact`);
      continue;
    }
    try {
      return sig.kind === 'bundle'
        ? verifySigstoreBundle(payload, image.digest, rule.signer, trust)
        : verifyCosignSignature(payload, layer.annotations ?? {}, image.digest, rule.signer, trust);
    } catch (err) {
      if (!(err instanceof SignatureRefused) && !(err instanceof SignatureFormatError)) throw err;
      last = err;
    }
  }
  if (last) throw last;
  return undefined;
}
