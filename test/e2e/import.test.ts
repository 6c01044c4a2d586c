import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import type { BundleMetadata } from '../../src/bundle/format.js';
import { runCli, startCli, tempDir, unexpectedOutput } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { editTar, readTar } from '../helpers/tar-edit.js';
import { sha256Digest } from '../../scripts/lib/digest.js';

const sha256 = sha256Digest;

let upstream: RunningRegistry;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
let bundle: string;
let meta: BundleMetadata;
const registries: RunningRegistry[] = [];

async function freshRegistry(opts?: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
  const r = await startRegistry(opts);
  registries.push(r);
  return r;
}

/** What skopeo, an independent client, gets for a reference: raw manifest bytes. */
function rawManifest(reg: RunningRegistry, ref: string): Buffer {
  return execFileSync(
    'skopeo',
    ['inspect', '--raw', ...reg.skopeoArgs('src').map((a) => a.replace('--src-', '--')), `docker://${reg.host}/${ref}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** Target repository under the default mapping: the source registry host is dropped. */
const targetOf = (ref: string) => ref.slice(ref.indexOf('/') + 1);

beforeAll(async () => {
  work = await tempDir();
  upstream = await startRegistry();
  images = await generateSampleImages(join(work.path, 'samples'));
  await seedRegistry(upstream, images);
  bundle = join(work.path, 'all.tar');
  const res = await runCli([
    'export',
    ...images.map((i) => `${upstream.host}/${i.repository}:${i.tag}`),
    '-o',
    bundle,
    '--plain-http',
    '--cache-dir',
    join(work.path, 'cache'),
    '-q',
  ]);
  expect(res.code).toBe(0);
  meta = JSON.parse(readTar(bundle)[0]!.data.toString()) as BundleMetadata;
});

afterAll(async () => {
  for (const r of registries) await r.stop();
  await upstream?.stop();
  await work?.remove();
});

describe('import into a real registry', () => {
  it('pushes every image byte for byte, verifies the catalog, and a rerun is a no-op', async () => {
    const dest = await freshRegistry();
    const res = await runCli(['import', bundle, '--registry', dest.host, '--plain-http', '--json']);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.images.every((i: { status: string }) => i.status === 'imported')).toBe(true);
    expect(out.verification.ok).toBe(true);
    expect(out.verification.catalog).toBe('listed');
    expect(out.mounted).toBeGreaterThan(0); // shared base layers land in several repositories
    for (const im of meta.images) {
      const raw = rawManifest(dest, targetOf(im.reference));
      expect(sha256(raw), im.reference).toBe(im.digest);
      expect(raw.equals(rawManifest(upstream, im.reference.slice(upstream.host.length + 1)))).toBe(true);
    }
    const catalog = JSON.parse(execFileSync('curl', ['-s', `${dest.url}/v2/_catalog`]).toString())
      .repositories as string[];
    for (const im of meta.images) expect(catalog).toContain(im.repository);

    const again = await runCli(['import', bundle, '--registry', dest.host, '--plain-http', '--json']);
    expect(again.code).toBe(0);
    const second = JSON.parse(again.stdout);
    expect(second.uploaded.blobs).toBe(0);
    expect(second.readBundle).toBe(false);
    expect(second.images.every((i: { status: string }) => i.status === 'already present')).toBe(true);
  });

  it('works through htpasswd auth and TLS with a private CA', async () => {
    const dest = await freshRegistry({ auth: 'htpasswd', tls: true });
    const subset = join(work.path, 'subset.tar');
    const refs = images.slice(0, 3).map((i) => `${upstream.host}/${i.repository}:${i.tag}`);
    expect(
      (await runCli(['export', ...refs, '-o', subset, '--plain-http', '--cache-dir', join(work.path, 'cache'), '-q']))
        .code,
    ).toBe(0);
    const noCa = await runCli(
      ['import', subset, '--registry', dest.host, '--username', dest.username!, '--password-stdin', '--retries', '0'],
      { input: dest.password! },
    );
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toContain('--ca-file');
    const wrong = await runCli(
      [
        'import',
        subset,
        '--registry',
        dest.host,
        '--ca-file',
        dest.caFile!,
        '--username',
        dest.username!,
        '--password-stdin',
      ],
      { input: 'not-the-password' },
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/401/);
    expect(wrong.stderr).not.toContain('not-the-password');
    const ok = await runCli(
      [
        'import',
        subset,
        '--registry',
        dest.host,
        '--ca-file',
        dest.caFile!,
        '--username',
        dest.username!,
        '--password-stdin',
        '-q',
      ],
      { input: `${dest.password!}\n` },
    );
    expect(unexpectedOutput(ok.stderr)).toEqual([]);
    expect(ok.code).toBe(0);
    for (const ref of refs) {
      const raw = rawManifest(dest, targetOf(ref));
      expect(sha256(raw)).toBe(meta.images.find((i) => i.reference === ref)!.digest);
    }
  });

  it('finishes after being killed halfway, uploading only what was missing', async () => {
    const dest = await freshRegistry();
    // A proxy that stalls the second blob upload gives a deterministic "halfway".
    const proxy = await startFaultProxy(dest.url);
    let puts = 0;
    proxy.rules.push({
      match: (m, p) => m === 'PUT' && p.includes('/blobs/uploads/') && ++puts >= 3,
      fault: { kind: 'stall' },
    });
    const child = startCli(['import', bundle, '--registry', proxy.host, '--plain-http', '-q'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 60_000;
    while (!proxy.requests.some((r) => r.faulted) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    await proxy.stop();
    expect(puts).toBeGreaterThanOrEqual(3);
    // Nothing is tagged yet: manifests come after every blob.
    for (const im of meta.images) expect(() => rawManifest(dest, targetOf(im.reference))).toThrow();

    const res = await runCli(['import', bundle, '--registry', dest.host, '--plain-http', '--json']);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout);
    const totalUploads = new Set(
      meta.blobs.filter((b) => b.role === 'layer' || b.role === 'config').map((b) => b.digest),
    ).size;
    expect(out.skipped).toBeGreaterThanOrEqual(2);
    expect(out.uploaded.blobs).toBeLessThan(totalUploads);
    expect(out.verification.ok).toBe(true);
  });

  it('never makes a damaged image visible and imports the intact ones', async () => {
    const dest = await freshRegistry();
    const layer = meta.blobs.find(
      (b) => b.role === 'layer' && meta.images.filter((i) => i.blobs.includes(b.digest)).length === 1,
    )!;
    const owner = meta.images.find((i) => i.blobs.includes(layer.digest))!;
    const bad = join(work.path, 'damaged.tar');
    editTar(bundle, bad, (es) => {
      const e = es.find((x) => x.path === `blobs/sha256/${layer.digest.slice(7)}`)!;
      e.data = Buffer.from(e.data);
      e.data[0]! ^= 0x55;
      return es;
    });
    const res = await runCli(['import', bad, '--registry', dest.host, '--plain-http']);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain(owner.reference);
    expect(() => rawManifest(dest, targetOf(owner.reference))).toThrow();
    for (const im of meta.images.filter((i) => i !== owner))
      expect(sha256(rawManifest(dest, targetOf(im.reference)))).toBe(im.digest);
    // The damaged blob is not in the registry under its digest.
    const head = execFileSync('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-I',
      `${dest.url}/v2/${targetOf(owner.reference).split(':')[0]}/blobs/${layer.digest}`,
    ]).toString();
    expect(head).toBe('404');
  });

  it('explains a platform-filtered index the registry refuses, and tags nothing', async () => {
    const dest = await freshRegistry();
    const multi = images.find((i) => i.kind === 'oci-index')!;
    const sparse = join(work.path, 'sparse.tar');
    expect(
      (
        await runCli([
          'export',
          `${upstream.host}/${multi.repository}:${multi.tag}`,
          '--platform',
          'linux/amd64',
          '-o',
          sparse,
          '--plain-http',
          '--cache-dir',
          join(work.path, 'cache'),
          '-q',
        ])
      ).code,
    ).toBe(0);
    const res = await runCli(['import', sparse, '--registry', dest.host, '--plain-http']);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/--platform/);
    expect(() => rawManifest(dest, `${multi.repository}:${multi.tag}`)).toThrow();
  });

  it('verify --registry reports what a registry lacks', async () => {
    const dest = await freshRegistry();
    const res = await runCli(['verify', bundle, '--registry', dest.host, '--plain-http', '--json']);
    expect(res.code).toBe(3);
    const check = JSON.parse(res.stdout);
    expect(check.rows.every((r: { status: string }) => r.status === 'missing')).toBe(true);
    expect(check.unlisted.length).toBeGreaterThan(0);
  });

  it('--keep-registry-host and --repo-prefix shape the target repositories; --dry-run writes nothing', async () => {
    const dest = await freshRegistry();
    const dry = await runCli([
      'import',
      bundle,
      '--registry',
      dest.host,
      '--plain-http',
      '--repo-prefix',
      'airgap',
      '--keep-registry-host',
      '--dry-run',
      '--json',
    ]);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    const hostDir = upstream.host.replace(':', '_');
    expect(plan.images[0].target).toContain(`${dest.host}/airgap/${hostDir}/`);
    const catalog = JSON.parse(execFileSync('curl', ['-s', `${dest.url}/v2/_catalog`]).toString());
    expect(catalog.repositories).toEqual([]);
  });
});
