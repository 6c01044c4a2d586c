import { execFileSync } from 'node:child_process';
import { verify } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { pushSignedImage, type SignedImage } from '../helpers/signed-image.js';
import { sha256Digest } from '../../scripts/lib/digest.js';
import { ACCEPT } from '../helpers/registry-state.js';

const sha256 = sha256Digest;

let upstream: RunningRegistry;
let dest: RunningRegistry;
let signed: SignedImage;
let work: { path: string; remove: () => Promise<void> };
let bundle: string;

async function get(reg: RunningRegistry, path: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${reg.url}${path}`, { headers: { accept: ACCEPT } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

beforeAll(async () => {
  work = await tempDir();
  upstream = await startRegistry();
  dest = await startRegistry();
  signed = await pushSignedImage(upstream);
  bundle = join(work.path, 'signed.tar');
  const res = await runCli([
    'export',
    `${upstream.host}/${signed.repository}:${signed.tag}`,
    '-o',
    bundle,
    '--plain-http',
    '--cache-dir',
    join(work.path, 'cache'),
  ]);
  expect(res.code, res.stderr).toBe(0);
  expect(res.stderr).toMatch(/found signature/);
});

afterAll(async () => {
  await upstream?.stop();
  await dest?.stop();
  await work?.remove();
});

describe('signatures, attestations and referrers cross the gap', () => {
  it('the bundle lists what was found per image', async () => {
    const s = JSON.parse((await runCli(['inspect', bundle, '--json'])).stdout);
    const image = s.images.find((i: { reference: string }) =>
      i.reference.endsWith(`${signed.repository}:${signed.tag}`),
    );
    expect(image.artifacts.map((a: { kind: string }) => a.kind).sort()).toEqual(['referrers', 'signature']);
    expect(image.artifacts.every((a: { subject: string }) => a.subject === signed.digest)).toBe(true);
    expect((await runCli(['verify', bundle])).code).toBe(0);
  });

  it('after import a verifier finds them, byte-identical, where it looks', async () => {
    const res = await runCli(['import', bundle, '--registry', dest.host, '--plain-http', '--json']);
    expect(res.code, res.stderr).toBe(0);
    for (const [ref, digest] of [
      [signed.tag, signed.digest],
      [signed.signatureTag, signed.signatureDigest],
      [signed.referrersTag, signed.referrersDigest],
      [signed.referrerDigest, signed.referrerDigest],
    ] as const) {
      const there = await get(dest, `/v2/${signed.repository}/manifests/${ref}`);
      const here = await get(upstream, `/v2/${signed.repository}/manifests/${ref}`);
      expect(there.status, ref).toBe(200);
      expect(sha256(there.body)).toBe(digest);
      expect(there.body.equals(here.body)).toBe(true);
    }
    // The cosign signature still verifies against the payload served by the isolated registry.
    const sig = JSON.parse(
      (await get(dest, `/v2/${signed.repository}/manifests/${signed.signatureTag}`)).body.toString(),
    );
    const layer = sig.layers[0];
    const payload = (await get(dest, `/v2/${signed.repository}/blobs/${layer.digest}`)).body;
    expect(
      verify(
        'sha256',
        payload,
        signed.publicKey,
        Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'], 'base64'),
      ),
    ).toBe(true);
    expect(JSON.parse(payload.toString()).critical.image['docker-manifest-digest']).toBe(signed.digest);
    // An independent client sees the same tags.
    const tags = JSON.parse(
      execFileSync('skopeo', [
        'list-tags',
        '--tls-verify=false',
        `docker://${dest.host}/${signed.repository}`,
      ]).toString(),
    ).Tags as string[];
    expect(tags.sort()).toEqual([signed.referrersTag, signed.signatureTag, signed.tag].sort());
    const check = await runCli(['verify', bundle, '--registry', dest.host, '--plain-http', '--deep']);
    expect(check.code).toBe(0);
  });

  it('a registry that does not list tags (404 or 403 on tags/list): the same artifacts are found by asking tag by tag', async () => {
    for (const status of [404, 403]) {
      const proxy = await startFaultProxy(upstream.url, [
        { match: (m, p) => m === 'GET' && p.includes('/tags/list'), fault: { kind: 'status', status } },
      ]);
      try {
        const out = join(work.path, `no-list-${status}.tar`);
        const res = await runCli([
          'export',
          `${upstream.host}/${signed.repository}:${signed.tag}`,
          '--registry-mirror',
          `*=http://${proxy.host}`,
          '-o',
          out,
          '--retries',
          '0',
          '-q',
        ]);
        expect(res.code, res.stderr).toBe(0);
        expect(proxy.requests.some((r) => r.faulted && r.path.includes('/tags/list'))).toBe(true);
        const s = JSON.parse((await runCli(['inspect', out, '--json'])).stdout);
        expect(
          s.images
            .find((i: { reference: string }) => i.reference.endsWith(`${signed.repository}:${signed.tag}`))
            .artifacts.map((a: { kind: string }) => a.kind)
            .sort(),
        ).toEqual(['referrers', 'signature']);
      } finally {
        await proxy.stop();
      }
    }
  });

  it('--no-signatures leaves them out', async () => {
    const bare = join(work.path, 'bare.tar');
    expect(
      (
        await runCli([
          'export',
          `${upstream.host}/${signed.repository}:${signed.tag}`,
          '--no-signatures',
          '-o',
          bare,
          '--plain-http',
          '--cache-dir',
          join(work.path, 'cache'),
          '-q',
        ])
      ).code,
    ).toBe(0);
    const s = JSON.parse((await runCli(['inspect', bare, '--json'])).stdout);
    expect(s.images).toHaveLength(1);
    expect(s.images[0].artifacts).toEqual([]);
  });
});
