// Real public-good Sigstore signatures (a Sidero Labs keyless signature of the Talos installer among
// them) and real cosign key signatures, verified offline against the public-good trusted root, and
// refused once anything about them is wrong: who signed, which issuer, which image, which key, the
// log's promise, the payload's bytes.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  COSIGN_BUNDLE,
  COSIGN_CERTIFICATE,
  COSIGN_SIGNATURE,
  type CosignAnnotations,
} from '../../src/signatures/cosign-bundle.js';
import { SignatureRefused } from '../../src/signatures/errors.js';
import { publicKeyRule, type SignerRule } from '../../src/signatures/keys.js';
import {
  parseTrustedRoot,
  verifyCosignSignature,
  verifySigstoreBundle,
} from '../../src/signatures/verify-signature.js';
import { loadTrustRoot } from '../../src/signatures/trust-root.js';

const DATA = resolve(import.meta.dirname, '../../../shared/testdata/sigstore');
const read = (path: string) => readFileSync(resolve(DATA, path));
const root = parseTrustedRoot(read('trusted-root/trusted_root.json'), 'the public-good root');

interface Fixture {
  payload: Buffer;
  annotations: CosignAnnotations;
  digest: string;
}

function fixture(dir: string): Fixture {
  const payload = read(`${dir}/payload.json`);
  const optional = (file: string) => {
    try {
      return read(`${dir}/${file}`).toString();
    } catch {
      return undefined;
    }
  };
  const annotations: CosignAnnotations = {};
  const signature = optional('signature.b64');
  if (signature) annotations[COSIGN_SIGNATURE] = signature.trim();
  const cert = optional('cert.pem');
  if (cert) annotations[COSIGN_CERTIFICATE] = cert;
  const bundle = optional('bundle.json');
  if (bundle) annotations[COSIGN_BUNDLE] = bundle;
  const carried = optional('layer_descriptor_annotations.json');
  if (carried && !signature) Object.assign(annotations, JSON.parse(carried).annotations);
  const digest = JSON.parse(payload.toString()).critical.image['docker-manifest-digest'] as string;
  return { payload, annotations, digest };
}

const sidero = fixture('talos-installer-v1.4.0');
const redhat = fixture('fulcio-rekor-2022');
const keyRekor = fixture('key-rekor');
const keyOnly = fixture('key-signed-manifest');
const siderolabs: SignerRule = {
  kind: 'keyless',
  issuer: 'https://accounts.google.com',
  subject: 'andrey.smirnov@siderolabs.com',
};
const keyOf = (dir: string) => publicKeyRule(read(`${dir}/pubkey.pem`).toString());

function refusal(f: Fixture, rule: SignerRule, digest = f.digest): string {
  try {
    verifyCosignSignature(f.payload, f.annotations, digest, rule, root);
  } catch (err) {
    expect(err).toBeInstanceOf(SignatureRefused);
    return (err as Error).message;
  }
  throw new Error('the signature was accepted');
}

describe('keyless signatures, offline', () => {
  it('verifies the Sidero Labs signature of the Talos installer: identity, issuer and log entry', () => {
    expect(verifyCosignSignature(sidero.payload, sidero.annotations, sidero.digest, siderolabs, root)).toEqual({
      signer: 'andrey.smirnov@siderolabs.com',
      issuer: 'https://accounts.google.com',
      logIndex: 18304044,
      integratedTime: 1681843022,
    });
  });

  it('verifies it with the root shipped inside the tool too, no file given', () => {
    const shipped = loadTrustRoot(undefined);
    expect(verifyCosignSignature(sidero.payload, sidero.annotations, sidero.digest, siderolabs, shipped).signer).toBe(
      'andrey.smirnov@siderolabs.com',
    );
  });

  it('verifies another public-good signature under a subject regular expression', () => {
    const rule: SignerRule = {
      kind: 'keyless',
      issuer: 'https://github.com/login/oauth',
      subjectRegex: /^mitr@redhat\.com$/,
    };
    expect(verifyCosignSignature(redhat.payload, redhat.annotations, redhat.digest, rule, root).logIndex).toBe(8949589);
  });

  it('refuses another subject, another issuer, a subject regular expression that does not match', () => {
    expect(refusal(sidero, { ...siderolabs, subject: 'someone@example.com' })).toMatch(/identity/);
    expect(refusal(sidero, { ...siderolabs, issuer: 'https://github.com/login/oauth' })).toMatch(/issuer|extension/i);
    expect(refusal(sidero, { kind: 'keyless', issuer: siderolabs.issuer, subjectRegex: /^.*@example\.com$/ })).toMatch(
      /does not match/,
    );
  });

  it('refuses a valid signature of another image', () => {
    expect(refusal(sidero, siderolabs, `sha256:${'0'.repeat(64)}`)).toMatch(/signature is of sha256:f41795cc/);
  });

  it('refuses a payload changed by one byte', () => {
    const payload = Buffer.from(sidero.payload.toString().replace('siderolabs/installer', 'siderolabs/installeR'));
    expect(refusal({ ...sidero, payload }, siderolabs)).toMatch(/signature|tlog|digest/i);
  });

  it("refuses a log entry whose promise is not the log's", () => {
    const rekor = JSON.parse(sidero.annotations[COSIGN_BUNDLE]!);
    rekor.SignedEntryTimestamp = JSON.parse(redhat.annotations[COSIGN_BUNDLE]!).SignedEntryTimestamp;
    expect(
      refusal(
        { ...sidero, annotations: { ...sidero.annotations, [COSIGN_BUNDLE]: JSON.stringify(rekor) } },
        siderolabs,
      ),
    ).toMatch(/tlog|inclusion|promise|SET/i);
  });

  it('refuses a signature without its log entry (nothing dates the short-lived certificate)', () => {
    const annotations = { ...sidero.annotations };
    delete annotations[COSIGN_BUNDLE];
    expect(refusal({ ...sidero, annotations }, siderolabs)).toMatch(/timestamp|tlog/i);
  });

  it("refuses another signer's certificate put beside the signature", () => {
    const annotations = { ...sidero.annotations, [COSIGN_CERTIFICATE]: redhat.annotations[COSIGN_CERTIFICATE]! };
    expect(refusal({ ...sidero, annotations }, siderolabs)).toMatch(/.+/);
  });

  it('refuses a keyless signature under a key rule', () => {
    expect(refusal(sidero, keyOf('key-rekor'))).toMatch(/keyless, not with the key/);
  });
});

describe('key-based signatures, offline', () => {
  it('verifies a signature with a log entry, and one without', () => {
    const withLog = verifyCosignSignature(
      keyRekor.payload,
      keyRekor.annotations,
      keyRekor.digest,
      keyOf('key-rekor'),
      root,
    );
    expect(withLog).toMatchObject({ signer: keyOf('key-rekor').fingerprint, logIndex: 11608800 });
    const alone = verifyCosignSignature(
      keyOnly.payload,
      keyOnly.annotations,
      keyOnly.digest,
      keyOf('key-signed-manifest'),
      root,
    );
    expect(alone).toEqual({ signer: keyOf('key-signed-manifest').fingerprint });
  });

  it('refuses an unknown key, and a key signature under a keyless rule', () => {
    expect(refusal(keyOnly, keyOf('key-rekor'))).toMatch(/signature verification failed/);
    expect(refusal(keyRekor, siderolabs)).toMatch(/signed with a key, not keyless/);
  });

  it('checks a carried log entry of a key signature too', () => {
    const rekor = JSON.parse(keyRekor.annotations[COSIGN_BUNDLE]!);
    rekor.Payload.logIndex += 1;
    const annotations = { ...keyRekor.annotations, [COSIGN_BUNDLE]: JSON.stringify(rekor) };
    expect(refusal({ ...keyRekor, annotations }, keyOf('key-rekor'))).toMatch(/.+/);
  });
});

describe('Sigstore bundles (v0.3), offline', () => {
  const attestation = read('bundle-v0.3-attestation/oci-attestation.sigstore.json');
  const subject = `sha256:${JSON.parse(Buffer.from(JSON.parse(attestation.toString()).dsseEnvelope.payload, 'base64').toString()).subject[0].digest.sha256}`;
  const github: SignerRule = { kind: 'keyless', issuer: 'https://github.com/login/oauth', subject: 'cody@soyland.com' };

  it('verifies a real public-good bundle with an inclusion proof, for the image its statement names', () => {
    expect(verifySigstoreBundle(attestation, subject, github, root)).toMatchObject({
      signer: 'cody@soyland.com',
      issuer: 'https://github.com/login/oauth',
    });
  });

  it('refuses it for another image, another subject, and with its envelope altered', () => {
    const refusedBy = (bytes: Buffer, digest: string, rule: SignerRule) => {
      try {
        verifySigstoreBundle(bytes, digest, rule, root);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusedBy(attestation, `sha256:${'0'.repeat(64)}`, github)).toMatch(/does not name sha256:0000/);
    expect(refusedBy(attestation, subject, { ...github, subject: 'someone@example.com' })).toMatch(/identity/);
    const altered = JSON.parse(attestation.toString());
    altered.dsseEnvelope.payloadType = 'application/vnd.in-toto+jsonx';
    expect(refusedBy(Buffer.from(JSON.stringify(altered)), subject, github)).toMatch(/.+/);
  });
});
