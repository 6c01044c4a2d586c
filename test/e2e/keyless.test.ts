// Keyless signatures end to end, against a Sigstore of the tests' own (a Fulcio-like CA with a CT
// log, a Rekor-like log, their trusted root): images in a real Distribution registry, signed as
// cosign signs keyless, exported with their signatures, and checked offline by verify. What passes,
// and what is refused with a reason: another identity, another issuer, a certificate that expired
// before the log saw the signature, a CA the root does not name, a log promise by another log, and a
// root carried inside an unsigned bundle (anyone who alters the bundle could bring their own).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { mergedRoot, mockSigstore } from '../helpers/mock-sigstore.js';
import { pushImageSignedBy } from '../helpers/signed-image.js';

const SUBJECT = 'https://github.com/example/app/.github/workflows/release.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

let registry: RunningRegistry;
let work: { path: string; remove: () => Promise<void> };
let bundle: string;
let root: string;

beforeAll(async () => {
  work = await tempDir('airgap-keyless-');
  registry = await startRegistry();
  const now = new Date();
  const good = await mockSigstore();
  // Its certificates are ten minutes old when its log sees the signatures: expired at signing time.
  const late = await mockSigstore({ caClock: new Date(now.getTime() - 60 * 60 * 1000), logClock: now });
  const stranger = await mockSigstore();
  const otherLog = await mockSigstore();
  await pushImageSignedBy(registry, 'keyless/app', (p) => good.signKeyless(p, SUBJECT, ISSUER));
  await pushImageSignedBy(registry, 'keyless/expired', (p) => late.signKeyless(p, SUBJECT, ISSUER));
  await pushImageSignedBy(registry, 'keyless/unknown-ca', (p) => stranger.signKeyless(p, SUBJECT, ISSUER));
  await pushImageSignedBy(registry, 'keyless/other-log', async (p) => {
    const a = await good.signKeyless(p, SUBJECT, ISSUER);
    const promise = JSON.parse((await otherLog.signKeyless(p, SUBJECT, ISSUER))['dev.sigstore.cosign/bundle']!);
    const own = JSON.parse(a['dev.sigstore.cosign/bundle']!);
    own.SignedEntryTimestamp = promise.SignedEntryTimestamp;
    return { ...a, 'dev.sigstore.cosign/bundle': JSON.stringify(own) };
  });
  root = join(work.path, 'root.json');
  // The stranger's CA is left out; the other log is named, but did not log this entry.
  writeFileSync(root, JSON.stringify(mergedRoot(good.root, late.root, otherLog.root)));
  bundle = join(work.path, 'keyless.tar');
  const refs = ['app', 'expired', 'unknown-ca', 'other-log'].map((r) => `${registry.host}/keyless/${r}:v1`);
  const r = await runCli(['export', ...refs, '-o', bundle, '--plain-http']);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  await registry?.stop();
  await work?.remove();
});

function policy(name: string, keyless: string): string {
  const path = join(work.path, name);
  writeFileSync(path, `rules:\n  - image: "${registry.host}/keyless/*"\n    keyless: ${keyless}\n`);
  return path;
}

async function statuses(policyFile: string, ...extra: string[]) {
  const r = await runCli(['verify', bundle, '--verify-signatures', policyFile, '--json', ...extra]);
  const report = JSON.parse(r.stdout) as {
    signatures: Array<{
      reference: string;
      status: string;
      reason?: string;
      verified?: { signer: string; issuer?: string; logIndex?: number };
    }>;
  };
  const of = (repo: string) => report.signatures.find((s) => s.reference.endsWith(`/keyless/${repo}:v1`))!;
  return { code: r.code, of, stderr: r.stderr };
}

describe('keyless signatures of the tests own Sigstore, checked offline', () => {
  it('verifies the signature whose certificate, SCT and log promise the root names, and refuses the others with why', async () => {
    const file = policy('keyless.yaml', `{ issuer: "${ISSUER}", subject: "${SUBJECT}" }`);
    const { code, of } = await statuses(file, '--trusted-root', root);
    expect(code).toBe(5);
    expect(of('app')).toMatchObject({ status: 'verified', verified: { signer: SUBJECT, issuer: ISSUER } });
    expect(of('app').verified!.logIndex).toEqual(expect.any(Number));
    expect(of('expired')).toMatchObject({ status: 'refused', reason: expect.stringMatching(/certificate chain/) });
    expect(of('unknown-ca')).toMatchObject({ status: 'refused', reason: expect.stringMatching(/certificate chain/) });
    expect(of('other-log')).toMatchObject({ status: 'refused', reason: expect.stringMatching(/inclusion promise/) });
  });

  it('refuses another subject, a subject regular expression that does not match, and another issuer', async () => {
    const subject = await statuses(
      policy('subject.yaml', `{ issuer: "${ISSUER}", subject: "https://github.com/example/other" }`),
      '--trusted-root',
      root,
    );
    expect(subject.of('app')).toMatchObject({ status: 'refused', reason: expect.stringMatching(/identity/) });
    const regex = await statuses(
      policy('regex.yaml', `{ issuer: "${ISSUER}", subjectRegex: "https://github\\\\.com/other/.*" }`),
      '--trusted-root',
      root,
    );
    expect(regex.of('app')).toMatchObject({ status: 'refused', reason: expect.stringMatching(/does not match/) });
    const matching = await statuses(
      policy('regex-ok.yaml', `{ issuer: "${ISSUER}", subjectRegex: "https://github\\\\.com/example/.*" }`),
      '--trusted-root',
      root,
    );
    expect(matching.of('app').status).toBe('verified');
    const issuer = await statuses(
      policy('issuer.yaml', `{ issuer: "https://accounts.google.com", subject: "${SUBJECT}" }`),
      '--trusted-root',
      root,
    );
    expect(issuer.of('app')).toMatchObject({ status: 'refused', reason: expect.stringMatching(/issuer|extension/i) });
  });

  it('a root carried inside an unsigned bundle is not trusted: only a signed bundle brings its own', async () => {
    const file = policy('carried.yaml', `{ issuer: "${ISSUER}", subject: "${SUBJECT}" }`);
    const keys = await runCli(['keygen', '-o', join(work.path, 'site')]);
    expect(keys.code, keys.stderr).toBe(0);
    const carried = join(work.path, 'carried.tar');
    const exported = await runCli([
      'export',
      `${registry.host}/keyless/app:v1`,
      '-o',
      carried,
      '--plain-http',
      '--verify-signatures',
      file,
      '--trusted-root',
      root,
      '--sign-key',
      join(work.path, 'site.key'),
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    const unsigned = await runCli(['verify', carried, '--verify-signatures', file]);
    expect(unsigned.code).toBe(5);
    expect(unsigned.stderr).toMatch(/it is not used: the bundle's signature was not checked/);
    const signed = await runCli([
      'verify',
      carried,
      '--public-key',
      join(work.path, 'site.pub'),
      '--verify-signatures',
      file,
    ]);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stderr).toMatch(/trusted root: the root carried in the bundle/);
  });
});
