// The cluster's signatures, checked by a verifier written here from the formats' specifications
// (cosign's simple signing, DSSE's pre-authentication encoding), not by the tool's own code.
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleSignature, legacySignature, loadCountersignKey } from '../../src/signatures/countersign.js';

const dir = mkdtempSync(join(tmpdir(), 'airgap-countersign-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DIGEST = `sha256:${'ab'.repeat(32)}`;

function keyFile(kind: 'ec' | 'ed25519'): { path: string; pub: ReturnType<typeof createPublicKey> } {
  const pair = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const path = join(dir, `${kind}.key`);
  writeFileSync(path, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return { path, pub: pair.publicKey };
}

describe('countersignatures', () => {
  it('the legacy payload names the image and its signature verifies with the public key (ECDSA P-256, SHA-256)', () => {
    const { path, pub } = keyFile('ec');
    const { payload, annotations } = legacySignature(loadCountersignKey(path), 'registry.lan/app', DIGEST);
    expect(JSON.parse(payload.toString()).critical.image['docker-manifest-digest']).toBe(DIGEST);
    const sig = Buffer.from(annotations['dev.cosignproject.cosign/signature']!, 'base64');
    expect(verify('sha256', payload, pub, sig)).toBe(true);
    expect(verify('sha256', Buffer.concat([payload, Buffer.from(' ')]), pub, sig)).toBe(false);
  });

  it('the bundle is v0.3, a DSSE envelope over an in-toto statement naming the image, signed over the PAE', () => {
    for (const kind of ['ec', 'ed25519'] as const) {
      const { path, pub } = keyFile(kind);
      const key = loadCountersignKey(path);
      const bundle = JSON.parse(bundleSignature(key, 'registry.lan/app', DIGEST).toString());
      expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
      expect(bundle.verificationMaterial.publicKey.hint).toBe(
        Buffer.from(key.fingerprint.slice(7), 'hex').toString('base64'),
      );
      const env = bundle.dsseEnvelope as { payload: string; payloadType: string; signatures: Array<{ sig: string }> };
      const payload = Buffer.from(env.payload, 'base64');
      const statement = JSON.parse(payload.toString());
      expect(statement.subject).toEqual([{ name: 'registry.lan/app', digest: { sha256: 'ab'.repeat(32) } }]);
      const pae = Buffer.concat([
        Buffer.from(`DSSEv1 ${Buffer.byteLength(env.payloadType)} ${env.payloadType} ${payload.length} `),
        payload,
      ]);
      const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
      expect(verify(kind === 'ec' ? 'sha256' : null, pae, pub, sig), kind).toBe(true);
    }
  });

  it('refuses a key file that is no private key, naming the flag and how to make one', () => {
    const path = join(dir, 'not-a-key');
    writeFileSync(path, 'hello');
    expect(() => loadCountersignKey(path)).toThrow(
      /--countersign-key .*not-a-key: not an unencrypted PEM private key.*keygen --type ecdsa-p256/,
    );
  });
});
