import { TrustedRoot } from '@sigstore/protobuf-specs';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier, type Signer } from '@sigstore/verify';
import { parseBoundedJson } from '../util/json.js';
import { printable } from '../util/text.js';
import { cosignToBundle, type CosignAnnotations } from './cosign-bundle.js';
import { SignatureFormatError, SignatureRefused } from './errors.js';
import type { SignerRule } from './keys.js';

/**
 * Checks one carried signature of an image against one rule, offline: the
 * Sigstore libraries check the certificate chain, the log's promise, the
 * signature and the identity; what is left here is what cosign itself adds
 * on top — the payload must name the image's digest.
 */

/** A trusted root (Fulcio CAs, Rekor and CT log keys) and where it came from, for the report. */
export interface TrustRoot {
  root: TrustedRoot;
  source: string;
  /** The root as compact JSON: what export carries in the bundle's metadata. */
  json: string;
}

export interface VerifiedSignature {
  /** The certificate's subject (keyless) or the key's fingerprint (key-based). */
  signer: string;
  issuer?: string;
  logIndex?: number;
  /** When the log saw the signature (seconds since the epoch), when it has an entry. */
  integratedTime?: number;
}

/** Reads a Sigstore `trusted_root.json`. */
export function parseTrustedRoot(bytes: Buffer, source: string): TrustRoot {
  try {
    const doc = parseBoundedJson(bytes);
    return { root: TrustedRoot.fromJSON(doc), source, json: JSON.stringify(doc) };
  } catch (err) {
    throw new SignatureFormatError(`${source} is not a Sigstore trusted root: ${(err as Error).message}`);
  }
}

/**
 * Verifies a cosign signature layer (`payload` and its annotations) as a
 * signature of `imageDigest` under `rule`, or throws SignatureRefused saying why.
 */
export function verifyCosignSignature(
  payload: Buffer,
  annotations: CosignAnnotations,
  imageDigest: string,
  rule: SignerRule,
  trust: TrustRoot,
): VerifiedSignature {
  const bundle = cosignToBundle(payload, annotations);
  const verified = verifyWithLibraries(bundle, payload, rule, trust);
  requireDigest(payload, imageDigest);
  return verified;
}

/**
 * Verifies a Sigstore bundle (v0.1 to v0.3) carried as an OCI referrer of the
 * image — cosign 3's format, and the one the cluster's countersignature uses:
 * a DSSE envelope whose in-toto statement names the image's digest.
 */
export function verifySigstoreBundle(
  bytes: Buffer,
  imageDigest: string,
  rule: SignerRule,
  trust: TrustRoot,
): VerifiedSignature {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(parseBoundedJson(bytes));
  } catch (err) {
    throw new SignatureFormatError(`not a Sigstore bundle: ${printable((err as Error).message, 200)}`);
  }
  if (bundle.content.$case !== 'dsseEnvelope')
    throw new SignatureRefused('a Sigstore bundle of a message signature, whose signed artifact is not carried');
  const verified = verifyWithLibraries(bundle, undefined, rule, trust);
  requireStatementSubject(bundle.content.dsseEnvelope.payload, imageDigest);
  return verified;
}

/**
 * One verifier per trusted root and rule, made once: the trust material parses
 * every CA certificate and log key of the root, which costs far more than a
 * signature check, and a policy checks thousands of images against a few rules.
 */
const verifiers = new WeakMap<TrustedRoot, WeakMap<SignerRule, Verifier>>();

function verifierFor(trust: TrustRoot, rule: SignerRule): Verifier {
  let byRule = verifiers.get(trust.root);
  if (!byRule) verifiers.set(trust.root, (byRule = new WeakMap()));
  let verifier = byRule.get(rule);
  if (verifier) return verifier;
  const keyless = rule.kind === 'keyless';
  const material = toTrustMaterial(
    trust.root,
    rule.kind === 'publicKey' ? () => ({ publicKey: rule.key, validFor: () => true }) : undefined,
  );
  // Keyless needs the log's promise or proof (it dates the short-lived certificate) and an SCT; a
  // key needs neither, and its log entry, when carried, is checked all the same.
  verifier = new Verifier(material, {
    tlogThreshold: keyless ? 1 : 0,
    ctlogThreshold: keyless ? 1 : 0,
    timestampThreshold: keyless ? 1 : 0,
  });
  byRule.set(rule, verifier);
  return verifier;
}

/** The checks Sigstore's libraries make: chain, SCT, log entry, signature, identity. */
function verifyWithLibraries(
  bundle: Bundle,
  artifact: Buffer | undefined,
  rule: SignerRule,
  trust: TrustRoot,
): VerifiedSignature {
  const keyless = bundle.verificationMaterial.content.$case !== 'publicKey';
  if (keyless !== (rule.kind === 'keyless'))
    throw new SignatureRefused(
      rule.kind === 'keyless' ? 'signed with a key, not keyless' : 'signed keyless, not with the key',
    );
  const verifier = verifierFor(trust, rule);
  let signer: Signer;
  try {
    signer = verifier.verify(toSignedEntity(bundle, artifact), policyOf(rule));
  } catch (err) {
    throw new SignatureRefused(printable((err as Error).message, 300));
  }
  requireSubject(rule, signer);
  const entry = bundle.verificationMaterial.tlogEntries[0];
  return {
    signer: rule.kind === 'publicKey' ? rule.fingerprint : (signer.identity?.subjectAlternativeName ?? ''),
    ...(signer.identity?.extensions?.issuer ? { issuer: signer.identity.extensions.issuer } : {}),
    ...(entry ? { logIndex: Number(entry.logIndex), integratedTime: Number(entry.integratedTime) } : {}),
  };
}

/** The in-toto statement must name the image among its subjects. */
function requireStatementSubject(payload: Buffer, imageDigest: string): void {
  const [algorithm, hex] = imageDigest.split(':') as [string, string];
  let subjects: unknown;
  try {
    subjects = (parseBoundedJson(payload) as { subject?: unknown }).subject;
  } catch {
    throw new SignatureRefused('the signed envelope does not hold an in-toto statement');
  }
  const names =
    Array.isArray(subjects) &&
    subjects.some((s) => (s as { digest?: Record<string, unknown> })?.digest?.[algorithm] === hex);
  if (!names) throw new SignatureRefused(`the signed statement does not name ${imageDigest}`);
}

/** The identity the libraries compare exactly: the issuer, and the subject when the rule names one. */
function policyOf(rule: SignerRule) {
  if (rule.kind !== 'keyless') return undefined;
  return {
    extensions: { issuer: rule.issuer },
    ...(rule.subject !== undefined ? { subjectAlternativeName: rule.subject } : {}),
  };
}

/** A subject regular expression matches the whole subject, as Talos and cosign match it. */
function requireSubject(rule: SignerRule, signer: Signer): void {
  if (rule.kind !== 'keyless' || !rule.subjectRegex) return;
  const subject = signer.identity?.subjectAlternativeName ?? '';
  if (!rule.subjectRegex.test(subject))
    throw new SignatureRefused(`signed by ${printable(subject)}, which does not match ${rule.subjectRegex.source}`);
}

/** The simple-signing payload must name the image: a valid signature of another image proves nothing here. */
function requireDigest(payload: Buffer, imageDigest: string): void {
  let named: unknown;
  try {
    named = (parseBoundedJson(payload) as { critical?: { image?: { 'docker-manifest-digest'?: unknown } } }).critical
      ?.image?.['docker-manifest-digest'];
  } catch {
    throw new SignatureRefused('the signed payload is not a simple-signing document');
  }
  if (named !== imageDigest)
    throw new SignatureRefused(`the signature is of ${printable(String(named), 80)}, not of ${imageDigest}`);
}
