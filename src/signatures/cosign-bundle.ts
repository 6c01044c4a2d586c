import { createHash } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { parseBoundedJson } from '../util/json.js';
import { SignatureFormatError } from './errors.js';

/**
 * cosign's legacy signature format — a `sha256-<hex>.sig` manifest whose
 * layers are simple-signing payloads, each with its signature, certificate,
 * chain and Rekor entry in annotations — restated as the Sigstore bundle it
 * is equivalent to (a message signature over the payload, v0.1), so the
 * Sigstore libraries check it: nothing here verifies anything.
 */

export const COSIGN_SIGNATURE = 'dev.cosignproject.cosign/signature';
export const COSIGN_CERTIFICATE = 'dev.sigstore.cosign/certificate';
export const COSIGN_CHAIN = 'dev.sigstore.cosign/chain';
export const COSIGN_BUNDLE = 'dev.sigstore.cosign/bundle';

/** A hint naming the key of a key-based signature in the trust material. */
export const PUBLIC_KEY_HINT = 'policy-key';

/** The annotations of one signature layer, as carried. */
export type CosignAnnotations = Record<string, string>;

/** The Rekor entry cosign stores in its bundle annotation (a signed entry timestamp, no inclusion proof). */
interface RekorBundle {
  SignedEntryTimestamp: string;
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
}

/**
 * The Sigstore bundle for one cosign signature layer over `payload`: the
 * certificate chain (keyless) or a key hint (key-based), the log entry when
 * there is one, and the signature with the payload's digest.
 */
export function cosignToBundle(payload: Buffer, annotations: CosignAnnotations): Bundle {
  const signature = annotations[COSIGN_SIGNATURE];
  if (!signature) throw new SignatureFormatError(`no ${COSIGN_SIGNATURE} annotation`);
  const certificate = annotations[COSIGN_CERTIFICATE];
  const entry = annotations[COSIGN_BUNDLE] ? tlogEntry(annotations[COSIGN_BUNDLE]) : undefined;
  const json = {
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    verificationMaterial: {
      ...(certificate
        ? { x509CertificateChain: { certificates: pemChain(certificate).map((rawBytes) => ({ rawBytes })) } }
        : { publicKey: { hint: PUBLIC_KEY_HINT } }),
      tlogEntries: entry ? [entry] : [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') },
      signature,
    },
  };
  try {
    return bundleFromJSON(json);
  } catch (err) {
    throw new SignatureFormatError(
      `the signature's annotations do not form a Sigstore bundle: ${(err as Error).message}`,
    );
  }
}

/** cosign's `{SignedEntryTimestamp, Payload}` as a bundle's log entry with its inclusion promise. */
function tlogEntry(text: string) {
  let rekor: RekorBundle;
  try {
    rekor = parseBoundedJson(Buffer.from(text)) as RekorBundle;
  } catch (err) {
    throw new SignatureFormatError(`${COSIGN_BUNDLE} is not JSON: ${(err as Error).message}`);
  }
  const p = rekor?.Payload;
  if (typeof rekor?.SignedEntryTimestamp !== 'string' || typeof p?.body !== 'string' || !/^[0-9a-f]+$/.test(p.logID))
    throw new SignatureFormatError(`${COSIGN_BUNDLE} lacks its signed entry timestamp, body or log id`);
  return {
    logIndex: String(p.logIndex),
    logId: { keyId: Buffer.from(p.logID, 'hex').toString('base64') },
    kindVersion: kindVersion(p.body),
    integratedTime: String(p.integratedTime),
    inclusionPromise: { signedEntryTimestamp: rekor.SignedEntryTimestamp },
    canonicalizedBody: p.body,
  };
}

/** The entry's kind and version, from its own body (what the log signed). */
function kindVersion(body: string): { kind: string; version: string } {
  try {
    const entry = parseBoundedJson(Buffer.from(body, 'base64')) as { kind?: unknown; apiVersion?: unknown };
    if (typeof entry.kind === 'string' && typeof entry.apiVersion === 'string')
      return { kind: entry.kind, version: entry.apiVersion };
  } catch {
    // Reported below: a body that is not an entry cannot match any signature.
  }
  throw new SignatureFormatError(`${COSIGN_BUNDLE}: the log entry's body is not a Rekor entry`);
}

/** DER bytes (base64) of each certificate of a PEM chain, leaf first. */
export function pemChain(pem: string): string[] {
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g)];
  if (blocks.length === 0) throw new SignatureFormatError('the certificate annotation holds no PEM certificate');
  return blocks.map((m) => m[1]!.replace(/\s+/g, ''));
}
