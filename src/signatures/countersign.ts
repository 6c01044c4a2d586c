import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { toDSSEBundle, bundleToJSON } from '@sigstore/bundle';
import { dsse } from '@sigstore/core';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';
import { COSIGN_SIGNATURE } from './cosign-bundle.js';
import { fingerprintOf } from './keys.js';

/**
 * A key-based signature of an image's top-level digest, made inside the gap
 * for the cluster's own `publicKey` rules (Talos checks those offline), in
 * the two forms Talos and cosign look up:
 * - a Sigstore bundle v0.3 (a DSSE envelope of an in-toto statement whose
 *   subject is the image), carried by an OCI 1.1 referrer manifest;
 * - cosign's legacy simple-signing payload with its signature annotation, for
 *   the `sha256-<hex>.sig` tag. On that path Talos does not compare the
 *   payload's digest with the image, so the signature itself binds it.
 * The envelope and bundle are built by Sigstore's libraries.
 */

export const BUNDLE_V03_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

export interface CountersignKey {
  key: KeyObject;
  /** sha256 of the public key (PKIX DER), the fingerprint reports name it by. */
  fingerprint: string;
}

/** The private key to countersign with (PEM: PKCS#8, SEC1 EC or PKCS#1 RSA; not encrypted). */
export function loadCountersignKey(path: string): CountersignKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserInputError(
      `--countersign-key ${printable(path)}: ${code === 'ENOENT' ? 'no such file' : `not an unencrypted PEM private key (${printable((err as Error).message)})`}; make one with \`airgap-bundle keygen --type ecdsa-p256\``,
    );
  }
  if (key.asymmetricKeyType !== 'ec' && key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ed25519')
    throw new UserInputError(
      `--countersign-key ${printable(path)}: a ${key.asymmetricKeyType} key; use ECDSA P-256, RSA or Ed25519`,
    );
  return { key, fingerprint: fingerprintOf(key) };
}

/** Signs as cosign does: SHA-256 for ECDSA and RSA, pure Ed25519. */
function signBytes(key: KeyObject, data: Buffer): Buffer {
  return sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key);
}

/** The legacy simple-signing payload for `repository`'s image `digest`, and its layer annotations. */
export function legacySignature(
  key: CountersignKey,
  dockerReference: string,
  digest: string,
): { payload: Buffer; annotations: Record<string, string> } {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  return { payload, annotations: { [COSIGN_SIGNATURE]: signBytes(key.key, payload).toString('base64') } };
}

/** A Sigstore bundle v0.3: a DSSE envelope over an in-toto statement naming the image, signed with the key. */
export function bundleSignature(key: CountersignKey, name: string, digest: string): Buffer {
  const [algorithm, hex] = digest.split(':') as [string, string];
  const statement = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name, digest: { [algorithm]: hex } }],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
  );
  const signature = signBytes(key.key, dsse.preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement));
  // Without a certificate the builder makes a v0.3 bundle with a public-key hint: what Talos and cosign read.
  const keyHint = Buffer.from(key.fingerprint.slice('sha256:'.length), 'hex').toString('base64');
  const bundle = toDSSEBundle({ artifact: statement, artifactType: IN_TOTO_PAYLOAD_TYPE, signature, keyHint });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}
