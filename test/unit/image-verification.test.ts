// mirror-config --image-verification: Talos's ImageVerificationConfig for the registries a bundle
// came from, holding the cluster's key as Talos reads it, and refused for Talos versions without it.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import {
  imageVerificationDocument,
  readClusterKey,
  requireImageVerification,
} from '../../src/mirror/image-verification.js';
import { globMatches } from '../../src/signatures/policy.js';

const dir = mkdtempSync(join(tmpdir(), 'airgap-image-verification-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ImageVerificationConfig for the cluster key', () => {
  it('has one publicKey rule per source registry, each matching every image of it as Talos matches', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const path = join(dir, 'cluster.pub');
    writeFileSync(path, publicKey.export({ type: 'spki', format: 'pem' }));
    const pem = readClusterKey(path);
    const doc = yaml.load(imageVerificationDocument(['ghcr.io', 'registry.k8s.io', 'ghcr.io'], pem)) as {
      apiVersion: string;
      kind: string;
      rules: Array<{ image: string; publicKey: { certificate: string } }>;
    };
    expect(doc.apiVersion).toBe('v1alpha1');
    expect(doc.kind).toBe('ImageVerificationConfig');
    expect(doc.rules.map((r) => r.image)).toEqual(['ghcr.io/*', 'registry.k8s.io/*']);
    expect(doc.rules.every((r) => r.publicKey.certificate === pem)).toBe(true);
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(globMatches(doc.rules[0]!.image, 'ghcr.io/siderolabs/kubelet')).toBe(true);
    expect(globMatches(doc.rules[0]!.image, 'docker.io/library/nginx')).toBe(false);
  });

  it('refuses a certificate or a private key where a public key belongs', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const path = join(dir, 'private.pem');
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => readClusterKey(path)).toThrow(/--image-verification .*private\.pem is not a PEM public key/);
  });

  it('refuses a Talos version before 1.13, naming the version that has it', () => {
    expect(() => requireImageVerification({ major: 1, minor: 12 })).toThrow(/Talos reads from v1\.13/);
    expect(() => requireImageVerification({ major: 1, minor: 13 })).not.toThrow();
    expect(() => requireImageVerification(undefined)).not.toThrow();
  });
});
