// The signature policy: Talos's ImageVerificationConfig rules read into a typed model (every
// mistake one line naming the field), globs over registry/repository, first match wins.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { globMatches, loadPolicy, PolicyError, ruleFor } from '../../src/signatures/policy.js';
import { loadTrustRoot } from '../../src/signatures/trust-root.js';

const dir = mkdtempSync(join(tmpdir(), 'airgap-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function policyFile(text: string): string {
  const path = join(dir, `p-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, text);
  return path;
}

describe('policy globs, as Talos matches them', () => {
  it('* is any run of characters, slashes included; nothing else is special', () => {
    expect(globMatches('ghcr.io/siderolabs/*', 'ghcr.io/siderolabs/kubelet')).toBe(true);
    expect(globMatches('ghcr.io/siderolabs/*', 'ghcr.io/siderolabs/sub/kubelet')).toBe(true);
    expect(globMatches('ghcr.io/*/kubelet', 'ghcr.io/siderolabs/sub/kubelet')).toBe(true);
    expect(globMatches('*', 'docker.io/library/nginx')).toBe(true);
    expect(globMatches('docker.io/library/nginx', 'docker.io/library/nginx')).toBe(true);
    expect(globMatches('docker.io/library/nginx', 'docker.io/library/nginx2')).toBe(false);
    // ?, dots and other regular-expression characters are literal.
    expect(globMatches('registry.k8s.io/pause?', 'registry.k8s.io/pause3')).toBe(false);
    expect(globMatches('ghcr.io/*', 'ghcrxio/app')).toBe(false);
    expect(globMatches('a*b*c', 'abc')).toBe(true);
    expect(globMatches('a*b*c', 'ab')).toBe(false);
    expect(globMatches('a*a', 'a')).toBe(false);
    expect(globMatches('*.io/*', 'ghcr.io/x')).toBe(true);
  });
});

describe('policy files', () => {
  it('reads a Talos document and a bare rules list alike; the first matching rule decides', () => {
    const talos = loadPolicy(
      policyFile(
        'apiVersion: v1alpha1\nkind: ImageVerificationConfig\nrules:\n  - image: ghcr.io/siderolabs/*\n    keyless:\n      issuer: https://accounts.google.com\n      subjectRegex: .*@siderolabs\\.com\n  - image: "**"\n    skip: true\n',
      ),
    );
    const rule = ruleFor(talos, 'ghcr.io/siderolabs/installer');
    expect(rule).toMatchObject({
      index: 0,
      action: 'verify',
      signer: { kind: 'keyless', issuer: 'https://accounts.google.com' },
    });
    const regex = (rule as { signer: { subjectRegex: RegExp } }).signer.subjectRegex;
    // The whole subject must match: a suffix after a matching part is not enough.
    expect(regex.test('andrey.smirnov@siderolabs.com')).toBe(true);
    expect(regex.test('mallory@siderolabs.com.evil.example')).toBe(false);
    expect(ruleFor(talos, 'docker.io/library/nginx')).toMatchObject({ index: 1, action: 'skip' });
    const bare = loadPolicy(policyFile('rules:\n  - image: docker.io/**\n    deny: true\n'));
    expect(ruleFor(bare, 'docker.io/library/nginx')).toMatchObject({ action: 'deny' });
    expect(ruleFor(bare, 'ghcr.io/x/y')).toBeUndefined();
  });

  it('verify: false is a skip, as in Talos', () => {
    const p = loadPolicy(
      policyFile(
        'rules:\n  - image: "**"\n    verify: false\n    keyless: { issuer: https://x.example, subject: a@b }\n',
      ),
    );
    expect(ruleFor(p, 'a/b')).toMatchObject({ action: 'skip' });
  });

  it.each([
    ['rules: {}\n', /"rules" must be a list/],
    ['rules:\n  - image: ""\n    skip: true\n', /rules\[0\]\.image must be a glob/],
    [
      'rules:\n  - image: a/*\n    keyless: { issuer: not-a-url, subject: x }\n',
      /keyless\.issuer must be the OIDC issuer URL/,
    ],
    [
      'rules:\n  - image: a/*\n    keyless: { issuer: https://x.example }\n',
      /needs exactly one of subject, subjectRegex/,
    ],
    [
      'rules:\n  - image: a/*\n    publicKey: { certificate: "-----BEGIN CERTIFICATE-----\\nMII\\n-----END CERTIFICATE-----" }\n',
      /not a PEM public key/,
    ],
    ['rules:\n  - image: a/*\n    skip: yes-please\n', /skip must be true/],
    ['- not: a document\n', /expected a document with "rules"/],
    [
      'rules:\n  - image: a/*\n    keyless: { issuer: https://x.example, subject: x, rekorURL: https://r.example, extra: 1 }\n',
      /keyless: unknown field extra/,
    ],
  ])('refuses %j naming the field', (text, message) => {
    const path = policyFile(text);
    let err: unknown;
    try {
      loadPolicy(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(path);
  });
});

describe('the trusted root shipped inside', () => {
  it('is the public-good root, read offline', () => {
    const root = loadTrustRoot(undefined);
    expect(root.source).toMatch(/public-good root/);
    expect(root.root.tlogs.some((t) => t.baseUrl === 'https://rekor.sigstore.dev')).toBe(true);
    expect(root.root.certificateAuthorities.length).toBeGreaterThan(0);
  });
});
