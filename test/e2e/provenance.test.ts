// Who signed each image, checked offline from what the bundle carries: two images signed as cosign
// signs (ECDSA P-256, the `sha256-<hex>.sig` tag) in a real registry, exported with their
// signatures, then `verify --verify-signatures` against policies that accept, refuse, deny, skip
// and leave unmatched, and policy files that are wrong in ways an operator gets them wrong.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { pushSignedImage, type SignedImage } from '../helpers/signed-image.js';
import { startServe } from '../helpers/serve-process.js';

let upstream: RunningRegistry;
let dest: RunningRegistry;
let app: SignedImage;
let tool: SignedImage;
let work: { path: string; remove: () => Promise<void> };
let bundle: string;
let appKey: string;
let toolKey: string;

const pem = (s: SignedImage) => s.publicKey.export({ type: 'spki', format: 'pem' }).toString();

beforeAll(async () => {
  work = await tempDir('airgap-provenance-');
  upstream = await startRegistry();
  dest = await startRegistry();
  app = await pushSignedImage(upstream, 'signed/app');
  tool = await pushSignedImage(upstream, 'signed/tool');
  appKey = join(work.path, 'app.pub');
  toolKey = join(work.path, 'tool.pub');
  writeFileSync(appKey, pem(app));
  writeFileSync(toolKey, pem(tool));
  bundle = join(work.path, 'signed.tar');
  const res = await runCli([
    'export',
    `${upstream.host}/signed/app:v1`,
    `${upstream.host}/signed/tool:v1`,
    '-o',
    bundle,
    '--plain-http',
  ]);
  expect(res.code, res.stderr).toBe(0);
});

afterAll(async () => {
  await upstream?.stop();
  await dest?.stop();
  await work?.remove();
});

/** Writes a policy file beside the keys and returns its path. */
function policy(name: string, text: string): string {
  const path = join(work.path, name);
  writeFileSync(path, text);
  return path;
}

/**
 * A Sigstore bundle v0.3 whose DSSE envelope is signed by `key` over an in-toto statement naming
 * `subject`: checked with the test's own code (the pre-authentication encoding written out from
 * the DSSE spec), not the tool's.
 */
function expectSignedFor(bundleBytes: Buffer, subject: string, key: ReturnType<typeof createPublicKey>): void {
  const sigBundle = JSON.parse(bundleBytes.toString());
  expect(sigBundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
  const envelope = sigBundle.dsseEnvelope as {
    payload: string;
    payloadType: string;
    signatures: Array<{ sig: string }>;
  };
  const payload = Buffer.from(envelope.payload, 'base64');
  expect(JSON.parse(payload.toString()).subject[0].digest.sha256).toBe(subject.slice('sha256:'.length));
  const pae = Buffer.concat([
    Buffer.from(`DSSEv1 ${Buffer.byteLength(envelope.payloadType)} ${envelope.payloadType} ${payload.length} `),
    payload,
  ]);
  expect(verify('sha256', pae, key, Buffer.from(envelope.signatures[0]!.sig, 'base64'))).toBe(true);
}

async function verifyWith(policyFile: string, ...extra: string[]) {
  const r = await runCli(['verify', bundle, '--verify-signatures', policyFile, ...extra]);
  const json = await runCli(['verify', bundle, '--verify-signatures', policyFile, '--json', ...extra]);
  expect(json.code).toBe(r.code);
  const report = JSON.parse(json.stdout) as {
    signatures: Array<{ reference: string; status: string; verified?: { signer: string }; reason?: string }>;
  };
  const of = (repo: string) => report.signatures.find((s) => s.reference.endsWith(`/${repo}:v1`))!;
  return { r, of, last: r.stderr.trim().split('\n').pop() ?? '' };
}

describe('image signatures checked offline at the crossing', () => {
  it('verifies each image with its own key, named by fingerprint, from a Talos ImageVerificationConfig document', async () => {
    const file = policy(
      'talos.yaml',
      `apiVersion: v1alpha1\nkind: ImageVerificationConfig\nrules:\n  - image: "${upstream.host}/signed/app"\n    publicKey:\n      key: app.pub\n  - image: "${upstream.host}/signed/*"\n    publicKey:\n      certificate: |\n${pem(
        tool,
      )
        .trim()
        .split('\n')
        .map((l) => `        ${l}`)
        .join('\n')}\n`,
    );
    const { r, of } = await verifyWith(file);
    expect(r.code, r.stderr).toBe(0);
    expect(of('app').status).toBe('verified');
    expect(of('tool').status).toBe('verified');
    expect(of('app').verified!.signer).not.toBe(of('tool').verified!.signer);
    expect(r.stderr).toMatch(/signatures: policy .*talos\.yaml/);
  });

  it("refuses an image signed by another key than its rule's: exit 5, naming the image and why", async () => {
    const file = policy(
      'wrong-key.yaml',
      `rules:\n  - image: "${upstream.host}/signed/**"\n    publicKey: { key: app.pub }\n`,
    );
    const { r, of, last } = await verifyWith(file);
    expect(r.code).toBe(5);
    expect(of('app').status).toBe('verified');
    expect(of('tool').status).toBe('refused');
    expect(last).toMatch(/1 of 2 images fail the signature policy: .*signed\/tool:v1 .*signature verification failed/);
  });

  it('denies what the policy denies, skips what it skips, and lets an unmatched image pass unless signatures are required', async () => {
    const file = policy(
      'deny.yaml',
      `rules:\n  - image: "${upstream.host}/signed/app"\n    deny: true\n  - image: "${upstream.host}/signed/tool"\n    skip: true\n`,
    );
    const denied = await verifyWith(file);
    expect(denied.r.code).toBe(5);
    expect(denied.of('app').status).toBe('denied');
    expect(denied.of('tool').status).toBe('skipped');

    const onlyApp = policy(
      'only-app.yaml',
      `rules:\n  - image: "${upstream.host}/signed/app"\n    publicKey: { key: app.pub }\n`,
    );
    const open = await verifyWith(onlyApp);
    expect(open.r.code).toBe(0);
    expect(open.of('tool').status).toBe('unmatched');
    const strict = await verifyWith(onlyApp, '--require-signatures');
    expect(strict.r.code).toBe(5);
    expect(strict.of('tool').status).toBe('refused');
    expect(strict.last).toMatch(/no rule of the policy matches/);
  });

  it('refuses a keyless rule for a key signature', async () => {
    const file = policy(
      'keyless.yaml',
      `rules:\n  - image: "**"\n    keyless: { issuer: https://accounts.google.com, subjectRegex: '.*@example\\.com' }\n`,
    );
    const { r, of } = await verifyWith(file);
    expect(r.code).toBe(5);
    expect(of('app').reason).toMatch(/signed with a key, not keyless/);
  });

  it('a policy file that is wrong is one line naming the file and the field, exit 2, before the bundle is read', async () => {
    const cases: Array<[string, RegExp]> = [
      [
        `rules:\n  - image: "**"\n    publicKey: { key: app.pub }\n    colour: red\n`,
        /rules\[0\]: unknown field colour/,
      ],
      [
        `rules:\n  - image: "**"\n    keyless: { issuer: https://x.example, subjectRegex: "(" }\n`,
        /rules\[0\]\.keyless\.subjectRegex is not a valid regular expression/,
      ],
      [
        `rules:\n  - image: "**"\n    publicKey: { key: missing.pub }\n`,
        /rules\[0\]\.publicKey\.key: cannot read missing\.pub: ENOENT/,
      ],
      [
        `rules:\n  - image: "**"\n    skip: true\n    deny: true\n`,
        /exactly one of keyless, publicKey, skip: true, deny: true/,
      ],
      [`kind: RegistryMirrorConfig\nrules: []\n`, /kind is RegistryMirrorConfig, expected ImageVerificationConfig/],
    ];
    for (const [i, [text, names]] of cases.entries()) {
      const r = await runCli(['verify', bundle, '--verify-signatures', policy(`bad-${i}.yaml`, text)]);
      const lines = r.stderr.trim().split('\n');
      expect(r.code, r.stderr).toBe(2);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(names);
      expect(lines[0]).toContain(`bad-${i}.yaml`);
    }
  });

  it('import pushes only the images that satisfy the policy: nothing of the others reaches the registry (exit 5)', async () => {
    const file = policy(
      'import.yaml',
      `rules:\n  - image: "${upstream.host}/signed/**"\n    publicKey: { key: app.pub }\n`,
    );
    const r = await runCli(['import', bundle, '--registry', dest.host, '--plain-http', '--verify-signatures', file]);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr.trim().split('\n').pop()).toMatch(
      /1 of \d+ images fail the signature policy, so nothing of them was pushed: .*signed\/tool:v1 .*signature verification failed/,
    );
    const catalog = (await (await fetch(`${dest.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(['signed/app']);
    const tags = (await (await fetch(`${dest.url}/v2/signed/app/tags/list`)).json()) as { tags: string[] };
    // The image and the signature that vouches for it, so a node can check it again.
    expect(tags.tags).toContain('v1');
    expect(tags.tags).toContain(app.signatureTag);
  });

  it('export refuses to carry an image that fails the policy: exit 5, nothing written, not even a partial file', async () => {
    const out = join(work.path, 'refused');
    mkdirSync(out);
    const file = policy(
      'export.yaml',
      `rules:\n  - image: "${upstream.host}/signed/**"\n    publicKey: { key: tool.pub }\n`,
    );
    const refs = [`${upstream.host}/signed/app:v1`, `${upstream.host}/signed/tool:v1`];
    const r = await runCli(['export', ...refs, '-o', join(out, 'b.tar'), '--plain-http', '--verify-signatures', file]);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr.trim().split('\n').pop()).toMatch(
      /1 of 2 images fail the signature policy, so no bundle was written: .*signed\/app:v1 .*signature verification failed/,
    );
    expect(readdirSync(out)).toEqual([]);
    const both = policy(
      'export-ok.yaml',
      `rules:\n  - image: "${upstream.host}/signed/app"\n    publicKey: { key: app.pub }\n  - image: "${upstream.host}/signed/tool"\n    publicKey: { key: tool.pub }\n`,
    );
    const ok = await runCli(['export', ...refs, '-o', join(out, 'b.tar'), '--plain-http', '--verify-signatures', both]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/signed\/tool:v1 +verified +sha256:[0-9a-f]{64}/);
  });

  it("import --countersign-key puts the cluster's signature beside each verified image, checked here by the test's own verifier", async () => {
    const into = await startRegistry();
    try {
      const keys = await runCli(['keygen', '--type', 'ecdsa-p256', '-o', join(work.path, 'cluster')]);
      expect(keys.code, keys.stderr).toBe(0);
      const clusterPub = createPublicKey(readFileSync(join(work.path, 'cluster.pub')));
      const both = policy(
        'countersign.yaml',
        `rules:\n  - image: "${upstream.host}/signed/app"\n    publicKey: { key: app.pub }\n  - image: "${upstream.host}/signed/tool"\n    publicKey: { key: tool.pub }\n`,
      );
      const importCountersigned = () =>
        runCli([
          'import',
          bundle,
          '--registry',
          into.host,
          '--plain-http',
          '--verify-signatures',
          both,
          '--countersign-key',
          join(work.path, 'cluster.key'),
        ]);
      const r = await importCountersigned();
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/countersigned 2 verified images with key sha256:[0-9a-f]{64}/);
      const get = async (
        path: string,
        accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      ) => {
        const res = await fetch(`${into.url}${path}`, { headers: { accept } });
        expect(res.status, path).toBe(200);
        return Buffer.from(await res.arrayBuffer());
      };
      for (const repo of ['signed/app', 'signed/tool']) {
        const tag = app.digest.replace(':', '-');
        const index = JSON.parse((await get(`/v2/${repo}/manifests/${tag}`)).toString()) as {
          manifests: Array<{ digest: string; artifactType?: string }>;
        };
        const upstreamReferrer = repo === 'signed/app' ? app.referrerDigest : tool.referrerDigest;
        // The referrer the image came with is still listed, beside the new one.
        expect(index.manifests.map((m) => m.digest)).toContain(upstreamReferrer);
        const ours = index.manifests.filter((m) => m.digest !== upstreamReferrer);
        expect(ours).toHaveLength(1);
        const manifest = JSON.parse((await get(`/v2/${repo}/manifests/${ours[0]!.digest}`)).toString());
        expect(manifest.artifactType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
        expect(manifest.subject.digest).toBe(app.digest);
        const sigBundle = await get(`/v2/${repo}/blobs/${manifest.layers[0].digest}`, '*/*');
        expectSignedFor(sigBundle, app.digest, clusterPub);
        // The upstream cosign signature is carried as it was: its tag still names the same manifest.
        const sig = await fetch(`${into.url}/v2/${repo}/manifests/${tag}.sig`, {
          method: 'HEAD',
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        });
        expect(sig.headers.get('docker-content-digest')).toBe(
          repo === 'signed/app' ? app.signatureDigest : tool.signatureDigest,
        );
      }
      const again = await importCountersigned();
      expect(again.code, again.stderr).toBe(0);
      const index = JSON.parse((await get(`/v2/signed/app/manifests/${app.digest.replace(':', '-')}`)).toString());
      // A rerun signs again (ECDSA signatures differ) but lists each signature once.
      expect(new Set(index.manifests.map((m: { digest: string }) => m.digest)).size).toBe(index.manifests.length);
      // And the round trip: a policy holding only the cluster's key accepts the images as the registry now serves them.
      const clusterOnly = policy(
        'cluster.yaml',
        `rules:\n  - image: "${into.host}/signed/**"\n    publicKey: { key: cluster.pub }\n`,
      );
      const back = await runCli([
        'export',
        `${into.host}/signed/app:v1`,
        `${into.host}/signed/tool:v1`,
        '-o',
        join(work.path, 'back.tar'),
        '--plain-http',
        '--verify-signatures',
        clusterOnly,
      ]);
      expect(back.code, back.stderr).toBe(0);
      expect(back.stderr).toMatch(/signed\/app:v1 +verified +sha256:[0-9a-f]{64}/);
    } finally {
      await into.stop();
    }
  });

  it("serve --countersign-key serves each verified image with the cluster's signature as a referrer, checked by the test's own verifier; a failing image refuses the start", async () => {
    const keys = await runCli(['keygen', '--type', 'ecdsa-p256', '-o', join(work.path, 'serve-cluster')]);
    expect(keys.code, keys.stderr).toBe(0);
    const clusterPub = createPublicKey(readFileSync(join(work.path, 'serve-cluster.pub')));
    const both = policy(
      'serve.yaml',
      `rules:\n  - image: "${upstream.host}/signed/app"\n    publicKey: { key: app.pub }\n  - image: "${upstream.host}/signed/tool"\n    publicKey: { key: tool.pub }\n`,
    );
    const key = join(work.path, 'serve-cluster.key');
    const served = await startServe([bundle, '--verify-signatures', both, '--countersign-key', key]);
    try {
      expect(served.listening.signatures).toEqual({ checked: 2, verified: 2, countersigned: 2 });
      const get = async (path: string, accept = 'application/vnd.oci.image.manifest.v1+json') => {
        const res = await fetch(`${served.url}${path}`, { headers: { accept } });
        expect(res.status, path).toBe(200);
        return Buffer.from(await res.arrayBuffer());
      };
      const listing = JSON.parse((await get(`/v2/signed/app/referrers/${app.digest}`)).toString()) as {
        manifests: Array<{ digest: string; artifactType?: string }>;
      };
      // The carried upstream referrer is still listed, beside the one made at start.
      expect(listing.manifests.map((m) => m.digest)).toContain(app.referrerDigest);
      const ours = listing.manifests.filter((m) => m.digest !== app.referrerDigest);
      expect(ours.map((m) => m.artifactType)).toEqual(['application/vnd.dev.sigstore.bundle.v0.3+json']);
      const manifest = JSON.parse((await get(`/v2/signed/app/manifests/${ours[0]!.digest}`)).toString());
      expect(manifest.subject.digest).toBe(app.digest);
      const sigBundle = await get(`/v2/signed/app/blobs/${manifest.layers[0].digest}`, '*/*');
      expectSignedFor(sigBundle, app.digest, clusterPub);
      // The carried cosign signature keeps its tag: a countersignature never replaces one.
      const sig = await fetch(`${served.url}/v2/signed/app/manifests/${app.digest.replace(':', '-')}.sig`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(sig.headers.get('docker-content-digest')).toBe(app.signatureDigest);
      // The round trip: a policy holding only the cluster's key accepts the images as serve answers them.
      const host = new URL(served.url).host;
      const clusterOnly = policy(
        'serve-cluster.yaml',
        `rules:\n  - image: "${host}/signed/**"\n    publicKey: { key: serve-cluster.pub }\n`,
      );
      const back = await runCli([
        'export',
        `${host}/signed/app:v1`,
        '-o',
        join(work.path, 'served-back.tar'),
        '--plain-http',
        '--verify-signatures',
        clusterOnly,
      ]);
      expect(back.code, back.stderr).toBe(0);
      expect(back.stderr).toMatch(/signed\/app:v1 +verified +sha256:[0-9a-f]{64}/);
    } finally {
      await served.stop();
    }
    const appOnly = policy(
      'serve-app-only.yaml',
      `rules:\n  - image: "${upstream.host}/signed/**"\n    publicKey: { key: app.pub }\n`,
    );
    const refused = await startServe([bundle, '--verify-signatures', appOnly, '--countersign-key', key]).then(
      async (s) => ({ code: await s.stop(), stderr: 'it started' }),
      (err: Error) => ({ code: undefined, stderr: err.message }),
    );
    expect(refused.stderr).toMatch(/so nothing is served: .*signed\/tool:v1/);
    expect(refused.stderr).toMatch(/did not start \(exit 5\)/);
  });

  it('--countersign-key needs a policy: what it signs is what the policy verified', async () => {
    const r = await runCli([
      'import',
      bundle,
      '--registry',
      dest.host,
      '--plain-http',
      '--countersign-key',
      join(work.path, 'x.key'),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /--countersign-key signs what the policy verified: give --verify-signatures POLICY too/,
    );
  });

  it('export --dry-run resolves and checks everything, fetches no blob and writes nothing', async () => {
    const out = join(work.path, 'dry');
    mkdirSync(out);
    const proxy = await startFaultProxy(upstream.url);
    try {
      const refs = [`${proxy.host}/signed/app:v1`, `${proxy.host}/signed/tool:v1`];
      const plain = await runCli(['export', ...refs, '-o', join(out, 'b.tar'), '--plain-http', '--dry-run', '--json']);
      expect(plain.code, plain.stderr).toBe(0);
      const summary = JSON.parse(plain.stdout);
      expect(summary).toMatchObject({ dryRun: true, images: 2, artifacts: 4 });
      expect(summary.downloadBytes).toBeGreaterThan(0);
      expect(proxy.requests.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
      expect(readdirSync(out)).toEqual([]);
      const wrong = policy(
        'dry.yaml',
        `rules:\n  - image: "${proxy.host}/signed/**"\n    publicKey: { key: app.pub }\n`,
      );
      const refused = await runCli([
        'export',
        ...refs,
        '-o',
        join(out, 'b.tar'),
        '--plain-http',
        '--dry-run',
        '--verify-signatures',
        wrong,
      ]);
      expect(refused.code, refused.stderr).toBe(5);
      expect(refused.stderr.trim().split('\n').pop()).toMatch(/signed\/tool:v1 .*signature verification failed/);
      expect(readdirSync(out)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  it('mirror-config --image-verification adds the ImageVerificationConfig for the cluster key, and refuses Talos before 1.13', async () => {
    const keys = await runCli(['keygen', '--type', 'ecdsa-p256', '-o', join(work.path, 'nodes'), '--force']);
    expect(keys.code, keys.stderr).toBe(0);
    const base = [
      'mirror-config',
      '--endpoint',
      'http://10.5.0.1:6000',
      '--bundle',
      bundle,
      '--image-verification',
      join(work.path, 'nodes.pub'),
    ];
    const r = await runCli([...base, '--format', 'talos-multidoc']);
    expect(r.code, r.stderr).toBe(0);
    const docs = r.stdout
      .split(/^---$/m)
      .map((d) => d.trim())
      .filter(Boolean);
    const verification = docs.find((d) => d.includes('kind: ImageVerificationConfig'))!;
    expect(verification).toContain(`image: ${upstream.host}/*`);
    expect(verification).toContain(readFileSync(join(work.path, 'nodes.pub'), 'utf8').split('\n')[1]!);
    expect(r.stderr).toMatch(/publicKey rules work offline from v1\.13\.8 and v1\.14\.0-beta\.1/);
    const old = await runCli([...base, '--format', 'talos-multidoc', '--talos-version', 'v1.12']);
    expect(old.code).toBe(2);
    expect(old.stderr.trim()).toMatch(/Talos reads from v1\.13/);
    const k3s = await runCli([...base, '--format', 'k3s']);
    expect(k3s.code).toBe(2);
    // talos-patch takes the same option and writes the same document beside the rest of the patch.
    const patchArgs = [
      '--endpoint',
      'http://10.5.0.1:6000',
      '--bundle',
      bundle,
      '--image-verification',
      join(work.path, 'nodes.pub'),
    ];
    const patch = await runCli(['talos-patch', ...patchArgs, '--talos-version', 'v1.13', '--time-server', '10.5.0.1']);
    expect(patch.code, patch.stderr).toBe(0);
    expect(patch.stdout).toContain('kind: ImageVerificationConfig');
    expect(patch.stdout).toContain('kind: TimeSyncConfig');
    const tooOld = await runCli(['talos-patch', ...patchArgs, '--talos-version', 'v1.12']);
    expect(tooOld.code).toBe(2);
  });

  it('export records who signed each image and the root it checked against; the isolated side trusts that root only in a signed bundle', async () => {
    const out = join(work.path, 'carried');
    mkdirSync(out);
    const keys = await runCli(['keygen', '-o', join(out, 'release')]);
    expect(keys.code, keys.stderr).toBe(0);
    const root = resolve(import.meta.dirname, '../../../shared/testdata/sigstore/trusted-root/trusted_root.json');
    const both = policy(
      'carried.yaml',
      `rules:\n  - image: "${upstream.host}/signed/app"\n    publicKey: { key: app.pub }\n  - image: "${upstream.host}/signed/tool"\n    publicKey: { key: tool.pub }\n`,
    );
    const exported = join(out, 'b.tar');
    const r = await runCli([
      'export',
      `${upstream.host}/signed/app:v1`,
      `${upstream.host}/signed/tool:v1`,
      '-o',
      exported,
      '--plain-http',
      '--verify-signatures',
      both,
      '--trusted-root',
      root,
      '--sign-key',
      join(out, 'release.key'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse((await runCli(['inspect', exported, '--json'])).stdout);
    const app = summary.images.find((i: { reference: string }) => i.reference.endsWith('/signed/app:v1'));
    expect(app.signed).toMatchObject({
      rule: expect.stringMatching(/^rules\[0\]/),
      signer: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(summary.trustedRoot).toContain('--trusted-root');
    expect((await runCli(['inspect', exported])).stdout).toMatch(
      /SIGNED BY[\s\S]*signed\/app:v1 .* sha256:[0-9a-f]{64}/,
    );
    const unsigned = await runCli(['verify', exported, '--verify-signatures', both]);
    expect(unsigned.code, unsigned.stderr).toBe(0);
    expect(unsigned.stderr).toMatch(
      /carries the trusted root export used, but it is not used: the bundle's signature was not checked/,
    );
    expect(unsigned.stderr).toMatch(/trusted root: the public-good root shipped with @sigstore\/tuf/);
    const signed = await runCli([
      'verify',
      exported,
      '--public-key',
      join(out, 'release.pub'),
      '--verify-signatures',
      both,
    ]);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stderr).toMatch(
      /trusted root: the root carried in the bundle \(--trusted-root .*trusted_root\.json; the bundle is signed by /,
    );
  });

  it('talos-cache --countersign-key lays the cluster signature into the cache where Talos looks; a failing image refuses the cache', async () => {
    const out = join(work.path, 'cache');
    mkdirSync(out);
    const keys = await runCli(['keygen', '--type', 'ecdsa-p256', '-o', join(out, 'cluster')]);
    expect(keys.code, keys.stderr).toBe(0);
    const both = policy(
      'cache.yaml',
      `rules:\n  - image: "${upstream.host}/signed/app"\n    publicKey: { key: app.pub }\n  - image: "${upstream.host}/signed/tool"\n    publicKey: { key: tool.pub }\n`,
    );
    const tree = join(out, 'tree');
    const r = await runCli([
      'talos-cache',
      bundle,
      '-o',
      tree,
      '--layout',
      'flat',
      '--platform',
      'all',
      '--verify-signatures',
      both,
      '--countersign-key',
      join(out, 'cluster.key'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const clusterPub = createPublicKey(readFileSync(join(out, 'cluster.pub')));
    const hostDir = upstream.host.replace(':', '_') + '_';
    const dir = join(tree, 'manifests', hostDir, 'signed', 'app');
    const tag = app.digest.replace(':', '-');
    // The tag file is the index that lists the upstream referrer and the cluster's; its digest file holds the same bytes.
    const indexBytes = readFileSync(join(dir, 'reference', tag));
    const indexDigest = `sha256-${createHash('sha256').update(indexBytes).digest('hex')}`;
    expect(readFileSync(join(dir, 'digest', indexDigest)).equals(indexBytes)).toBe(true);
    const listed = JSON.parse(indexBytes.toString()).manifests as Array<{ digest: string }>;
    expect(listed.map((m) => m.digest)).toContain(app.referrerDigest);
    const ours = listed.find((m) => m.digest !== app.referrerDigest)!;
    const manifest = JSON.parse(readFileSync(join(dir, 'digest', ours.digest.replace(':', '-'))).toString());
    expect(manifest.subject.digest).toBe(app.digest);
    const envelope = JSON.parse(
      readFileSync(join(tree, 'blob', manifest.layers[0].digest.replace(':', '-'))).toString(),
    ).dsseEnvelope;
    const payload = Buffer.from(envelope.payload, 'base64');
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${Buffer.byteLength(envelope.payloadType)} ${envelope.payloadType} ${payload.length} `),
      payload,
    ]);
    expect(verify('sha256', pae, clusterPub, Buffer.from(envelope.signatures[0].sig, 'base64'))).toBe(true);
    // The upstream legacy signature stays as it came.
    expect(
      createHash('sha256')
        .update(readFileSync(join(dir, 'reference', `${tag}.sig`)))
        .digest('hex'),
    ).toBe(app.signatureDigest.slice(7));

    const wrong = policy(
      'cache-wrong.yaml',
      `rules:\n  - image: "${upstream.host}/signed/**"\n    publicKey: { key: app.pub }\n`,
    );
    const refused = await runCli(['talos-cache', bundle, '-o', join(out, 'refused'), '--verify-signatures', wrong]);
    expect(refused.code, refused.stderr).toBe(5);
    expect(refused.stderr.trim().split('\n').pop()).toMatch(/so no image cache was written: .*signed\/tool:v1/);
    expect(readdirSync(out)).not.toContain('refused');
  });
});
