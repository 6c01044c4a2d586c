import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { UserInputError } from '../util/user-input.js';

/**
 * Bundle signatures. The signed bytes are the metadata entry exactly as stored:
 * it pins every blob digest and size, and the reader checks every blob and
 * index.json against it, so a valid signature covers the whole bundle.
 */
export const SIGNATURE_FORMAT = 'airgap-bundle-signature/v1';

export interface SignatureDoc {
  format: typeof SIGNATURE_FORMAT;
  algorithm: 'ed25519';
  /** sha256 of the public key (SPKI DER): names the key that must verify it. */
  keyId: string;
  /** base64 */
  signature: string;
}

export class SignatureError extends UserInputError {
  override name = 'SignatureError';
}

export function keyId(publicKey: KeyObject): string {
  return `sha256:${createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`;
}

export function generateSigningKeys(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    keyId: keyId(publicKey),
  };
}

function loadKey(pem: string, kind: 'private' | 'public', source: string): KeyObject {
  try {
    const key = kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`an ${key.asymmetricKeyType} key`);
    return key;
  } catch (err) {
    throw new SignatureError(
      `${source} is not an Ed25519 ${kind} key in PEM (${(err as Error).message}); make one with "airgap-bundle keygen"`,
    );
  }
}

export function signBytes(bytes: Buffer, privatePem: string, source: string): Buffer {
  const key = loadKey(privatePem, 'private', source);
  const doc: SignatureDoc = {
    format: SIGNATURE_FORMAT,
    algorithm: 'ed25519',
    keyId: keyId(createPublicKey(key)),
    signature: sign(null, bytes, key).toString('base64'),
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
}

export type SignatureCheck =
  { status: 'valid'; keyId: string } | { status: 'missing' | 'invalid' | 'wrong-key'; reason: string };

/** Checks a signature entry against the metadata bytes and a trusted public key. */
export function checkSignature(
  metadataBytes: Buffer | undefined,
  signatureBytes: Buffer | undefined,
  publicPem: string,
  source: string,
): SignatureCheck {
  const key = loadKey(publicPem, 'public', source);
  if (!signatureBytes) return { status: 'missing', reason: 'the bundle is not signed' };
  if (!metadataBytes) return { status: 'invalid', reason: 'the bundle has no metadata to check the signature against' };
  let doc: Partial<SignatureDoc>;
  try {
    doc = JSON.parse(signatureBytes.toString('utf8')) as Partial<SignatureDoc>;
  } catch {
    return { status: 'invalid', reason: 'the signature entry is not valid JSON' };
  }
  if (doc.format !== SIGNATURE_FORMAT || doc.algorithm !== 'ed25519' || typeof doc.signature !== 'string') {
    return { status: 'invalid', reason: 'the signature entry is not an airgap-bundle Ed25519 signature' };
  }
  const expected = keyId(key);
  if (doc.keyId !== expected)
    return { status: 'wrong-key', reason: `signed by key ${String(doc.keyId)}, not by the given key ${expected}` };
  const ok = verify(null, metadataBytes, key, Buffer.from(doc.signature, 'base64'));
  return ok
    ? { status: 'valid', keyId: expected }
    : { status: 'invalid', reason: 'the signature does not match the metadata: the bundle was changed after signing' };
}
