import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

/** What a rule requires of a signature. */
export type SignerRule =
  | { kind: 'keyless'; issuer: string; subject?: string; subjectRegex?: RegExp }
  | { kind: 'publicKey'; key: KeyObject; fingerprint: string };

/** sha256 of a public key's PKIX DER form (of a private key: of its public half): how reports name a key. */
export function fingerprintOf(key: KeyObject): string {
  const pub = key.type === 'public' ? key : createPublicKey(key);
  const der = pub.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/** A PEM public key (ECDSA, RSA, Ed25519) as a rule's key, with the fingerprint reports name it by. */
export function publicKeyRule(pem: string): Extract<SignerRule, { kind: 'publicKey' }> {
  const key = createPublicKey(pem);
  return { kind: 'publicKey', key, fingerprint: fingerprintOf(key) };
}
