// `serve` as real clients use it: skopeo copies every image and gets the upstream's digests,
// containerd fetches through a '*' mirror (sending ?ns=) and unpacks, `verify --registry` and an
// export through the server agree with the bundle, referrers and cosign tags are found, TLS works
// through the generated CA, and volume sets, Range, basic auth and a graceful stop behave.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import type { SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startContainerd, type PrivateContainerd } from '../helpers/containerd.js';
import { exportSampleBundle } from '../helpers/sample-bundle.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { pushSignedImage, type SignedImage } from '../helpers/signed-image.js';

let upstream: RunningRegistry;
let other: RunningRegistry;
let containerd: PrivateContainerd;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
let bundle: string;
let served: ServeProcess;
const started: ServeProcess[] = [];

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
/** `ghcr.io/siderolabs/kubelet:v1.31.1` → `siderolabs/kubelet:v1.31.1`: the '*' mirror path. */
const pathOf = (upstreamRef: string) => upstreamRef.replace(/^[^/]+\//, '');

async function serve(args: string[], input?: string): Promise<ServeProcess> {
  const s = await startServe(args, input === undefined ? {} : { input });
  started.push(s);
  return s;
}

function skopeo(args: string[]): { code: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function rawManifest(host: string, ref: string, extra: string[] = []): Buffer {
  const r = skopeo(['inspect', '--raw', '--tls-verify=false', ...extra, `docker://${host}/${ref}`]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  work = await tempDir('airgap-serve-');
  [{ upstream, images, bundle }, containerd, other] = await Promise.all([
    exportSampleBundle(work.path),
    startContainerd(),
    startRegistry(),
  ]);
  served = await serve([bundle]);
}, 240_000);

afterAll(async () => {
  for (const s of started) await s.stop('SIGKILL');
  await upstream?.stop();
  await other?.stop();
  await containerd?.stop();
  await work?.remove();
});

describe('serve: real clients pull every image', () => {
  it('skopeo copy --all of every image: the manifests are the upstream bytes, every blob checks', () => {
    const host = `127.0.0.1:${served.port}`;
    mkdirSync(join(work.path, 'skopeo-out'));
    for (const img of images) {
      const ref = pathOf(img.upstream);
      expect(sha256(rawManifest(host, ref)), ref).toBe(sha256(rawManifest(upstream.host, ref)));
      const copied = skopeo([
        'copy',
        '--all',
        '--preserve-digests',
        '--src-tls-verify=false',
        `docker://${host}/${ref}`,
        `dir:${join(work.path, 'skopeo-out', ref.replace(/[/:]/g, '-'))}`,
      ]);
      expect(copied.code, `${ref}: ${copied.stderr}`).toBe(0);
    }
    const failed = served.logs().filter((r) => typeof r.status === 'number' && r.status >= 500);
    expect(failed).toEqual([]);
  });

  it('verify --registry --deep against the server: every tag, digest and blob matches the bundle', async () => {
    const res = await runCli(['verify', bundle, '--registry', `127.0.0.1:${served.port}`, '--plain-http', '--deep']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
  });

  it('round trip: an export through the server writes a bundle byte-identical to the one served', async () => {
    const list = join(work.path, 'cluster.images');
    const again = join(work.path, 'round-trip.tar');
    const res = await runCli([
      'export',
      '-f',
      list,
      '--registry-mirror',
      `*=http://127.0.0.1:${served.port}`,
      '-o',
      again,
      '-q',
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(sha256(readFileSync(again))).toBe(sha256(readFileSync(bundle)));
  });

  it("containerd fetches every image, all platforms, through a '*' mirror, sends ?ns=, and unpacks one", async () => {
    const hostsDir = join(work.path, 'certs.d-serve');
    const endpoint = `http://127.0.0.1:${served.port}`;
    const written = await runCli([
      'mirror-config',
      '--format',
      'containerd',
      '--endpoint',
      endpoint,
      '--bundle',
      bundle,
      '-o',
      hostsDir,
    ]);
    expect(written.code, written.stderr).toBe(0);
    for (const img of images) {
      const r = containerd.ctr(['content', 'fetch', '--hosts-dir', hostsDir, '--all-platforms', img.upstream], 'serve');
      expect(r.code, `${img.upstream}: ${r.stderr}`).toBe(0);
    }
    const pulled = containerd.ctr(
      ['images', 'pull', '--snapshotter', 'native', '--hosts-dir', hostsDir, images[0]!.upstream],
      'serve',
    );
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(containerd.ctr(['images', 'check'], 'serve').stdout).toMatch(/complete/);
    // ctr ran synchronously: the access-log lines are read now.
    for (const registry of new Set(images.map((i) => i.upstream.split('/')[0]!)))
      await served.waitForLog((r) => String(r.path).endsWith(`?ns=${registry}`) && r.status === 200);
  });

  it('answers a Range with 206 and exactly those bytes of the blob', async () => {
    const img = images.find((i) => i.upstream.includes('kubelet'))!;
    const ref = pathOf(img.upstream);
    const index = JSON.parse(rawManifest(`127.0.0.1:${served.port}`, ref).toString());
    const child = index.manifests[0].digest;
    const m = JSON.parse(rawManifest(`127.0.0.1:${served.port}`, `${ref.split(':')[0]}@${child}`).toString());
    const layer = m.layers[0].digest as string;
    const url = `${served.url}/v2/${ref.split(':')[0]}/blobs/${layer}`;
    const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(sha256(whole)).toBe(layer);
    const part = await fetch(url, { headers: { Range: 'bytes=100-1123' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-1123/${whole.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(whole.subarray(100, 1124))).toBe(true);
    const tail = await fetch(url, { headers: { Range: 'bytes=-7' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(whole.subarray(whole.length - 7))).toBe(true);
  });

  it('pages _catalog and tags/list with n/last and a Link header', async () => {
    const all = ((await (await fetch(`${served.url}/v2/_catalog`)).json()) as any).repositories as string[];
    expect(all.length).toBe(new Set(images.map((i) => pathOf(i.upstream).split(':')[0])).size);
    const seen: string[] = [];
    let next: string | undefined = '/v2/_catalog?n=5';
    while (next) {
      const res: Response = await fetch(`${served.url}${next}`);
      seen.push(...(((await res.json()) as any).repositories as string[]));
      next = /^<([^>]+)>; rel="next"$/.exec(res.headers.get('link') ?? '')?.[1];
    }
    expect(seen).toEqual(all);
  });

  it('refuses every write with 405 UNSUPPORTED', async () => {
    const res = await fetch(`${served.url}/v2/siderolabs/kubelet/blobs/uploads/`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(((await res.json()) as any).errors[0].code).toBe('UNSUPPORTED');
  });
});

describe('serve: two registries, one path; signatures and referrers', () => {
  let signed: SignedImage;
  let nsBundle: string;
  let ns: ServeProcess;

  beforeAll(async () => {
    // The same path `library/app:1` from two registries with different content.
    signed = await pushSignedImage(upstream, 'library/app', '1');
    const busybox = images.find((i) => i.upstream.startsWith('docker.io/library/busybox'))!;
    const copied = skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${upstream.host}/${pathOf(busybox.upstream)}`,
      `docker://${other.host}/library/app:1`,
    ]);
    expect(copied.code, copied.stderr).toBe(0);
    nsBundle = join(work.path, 'two-registries.tar');
    const res = await runCli([
      'export',
      'docker.io/library/app:1',
      'quay.io/library/app:1',
      '--registry-mirror',
      `docker.io=${upstream.url}`,
      '--registry-mirror',
      `quay.io=${other.url}`,
      '-o',
      nsBundle,
      '-q',
    ]);
    expect(res.code, res.stderr).toBe(0);
    ns = await serve([nsBundle]);
  }, 120_000);

  it('?ns= picks the registry; without it the tag is ambiguous and says how to choose', async () => {
    const head = (q: string) => fetch(`${ns.url}/v2/library/app/manifests/1${q}`, { method: 'HEAD' });
    expect((await head('?ns=docker.io')).headers.get('docker-content-digest')).toBe(signed.digest);
    const quay = (await head('?ns=quay.io')).headers.get('docker-content-digest');
    expect(quay).toMatch(/^sha256:/);
    expect(quay).not.toBe(signed.digest);
    const none = await fetch(`${ns.url}/v2/library/app/manifests/1`);
    expect(none.status).toBe(404);
    expect(((await none.json()) as any).errors[0].message).toMatch(/docker\.io, quay\.io.*\?ns=/);
    expect((await head('?ns=ghcr.io')).status).toBe(404);
  });

  it("containerd pulls both through one '*' mirror", async () => {
    const hostsDir = join(work.path, 'certs.d-ns');
    const written = await runCli(['mirror-config', '--format', 'containerd', '--endpoint', ns.url, '-o', hostsDir]);
    expect(written.code, written.stderr).toBe(0);
    for (const ref of ['docker.io/library/app:1', 'quay.io/library/app:1']) {
      const r = containerd.ctr(['content', 'fetch', '--hosts-dir', hostsDir, '--all-platforms', ref], 'serve-ns');
      expect(r.code, `${ref}: ${r.stderr}`).toBe(0);
    }
    const listed = containerd.ctr(['images', 'list', '-q'], 'serve-ns').stdout;
    expect(listed).toContain('docker.io/library/app:1');
  });

  it('the referrers API lists the carried referrer, filtered by artifactType; cosign tags are listed', async () => {
    const url = `${ns.url}/v2/library/app/referrers/${signed.digest}?ns=docker.io`;
    const all = await fetch(url);
    expect(all.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
    const found = ((await all.json()) as any).manifests as Array<{ digest: string; artifactType?: string }>;
    expect(found.map((d) => d.digest)).toEqual([signed.referrerDigest]);
    const type = found[0]!.artifactType!;
    const filtered = await fetch(`${url}&artifactType=${type}`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect((((await filtered.json()) as any).manifests as unknown[]).length).toBe(1);
    const other = await fetch(`${url}&artifactType=application/x-none`);
    expect((((await other.json()) as any).manifests as unknown[]).length).toBe(0);
    const tags = ((await (await fetch(`${ns.url}/v2/library/app/tags/list?ns=docker.io`)).json()) as any).tags;
    expect(tags).toEqual(expect.arrayContaining(['1', signed.signatureTag, signed.referrersTag]));
  });

  it('an export through the server finds the signature, the referrers index and the referrer', async () => {
    // One registry's content only: an export asks without ?ns=, so the path must not be ambiguous.
    const signedOnly = join(work.path, 'signed.tar');
    const first = await runCli([
      'export',
      'docker.io/library/app:1',
      '--registry-mirror',
      `docker.io=${upstream.url}`,
      '-o',
      signedOnly,
      '-q',
    ]);
    expect(first.code, first.stderr).toBe(0);
    const s = await serve([signedOnly]);
    const again = join(work.path, 'from-serve.tar');
    const res = await runCli([
      'export',
      'docker.io/library/app:1',
      '--registry-mirror',
      `docker.io=${s.url}`,
      '-o',
      again,
      '-q',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const meta = JSON.parse((await runCli(['inspect', again, '--json'])).stdout);
    const artifacts = meta.images[0].artifacts as Array<{ kind: string; reference: string }>;
    expect(artifacts.map((a) => a.kind)).toEqual(expect.arrayContaining(['signature', 'referrers', 'referrer']));
    expect(artifacts.find((a) => a.kind === 'signature')?.reference).toBe(
      `docker.io/library/app:${signed.signatureTag}`,
    );
    expect(artifacts.find((a) => a.kind === 'referrer')?.reference).toBe(
      `docker.io/library/app@${signed.referrerDigest}`,
    );
  });

  it('refuses at start a tag that two bundles give different content, naming both', async () => {
    const conflicting = join(work.path, 'conflict.tar');
    const res = await runCli([
      'export',
      'docker.io/library/app:1',
      '--registry-mirror',
      `docker.io=${other.url}`,
      '-o',
      conflicting,
      '-q',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const refused = await runCli(['serve', nsBundle, conflicting, '--listen', '127.0.0.1:0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /docker\.io\/library\/app:1 is sha256:\w+ in .*conflict\.tar but sha256:\w+ in .*two-registries\.tar/,
    );
  });
});

describe('serve: TLS, auth, volumes, stopping', () => {
  it('--tls-generate: curl and containerd trust the generated CA; a restart reuses the files', async () => {
    const dir = join(work.path, 'serve-tls');
    const tls = await serve([bundle, '--tls-generate', dir, '--advertise', '127.0.0.1']);
    expect(tls.listening.written).toHaveLength(4);
    const url = `https://127.0.0.1:${tls.port}/v2/`;
    expect(spawnSync('curl', ['-sf', '--cacert', join(dir, 'ca.crt'), url]).status).toBe(0);
    expect(spawnSync('curl', ['-sf', url]).status).toBe(60);
    const hostsDir = join(work.path, 'certs.d-tls');
    const written = await runCli([
      'mirror-config',
      '--format',
      'containerd',
      '--endpoint',
      `https://127.0.0.1:${tls.port}`,
      '--ca-file',
      join(dir, 'ca.crt'),
      '--bundle',
      bundle,
      '-o',
      hostsDir,
    ]);
    expect(written.code, written.stderr).toBe(0);
    const r = containerd.ctr(
      ['content', 'fetch', '--hosts-dir', hostsDir, '--all-platforms', images[0]!.upstream],
      'serve-tls',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await tls.stop()).toBe(0);
    const cert = readFileSync(join(dir, 'server.crt'), 'utf8');
    const again = await serve([bundle, '--tls-generate', dir, '--advertise', '127.0.0.1']);
    expect(again.listening.written).toEqual([]);
    expect(readFileSync(join(dir, 'server.crt'), 'utf8')).toBe(cert);
  });

  it('--username/--password-stdin: 401 with a Basic challenge without, skopeo pulls with them', async () => {
    const auth = await serve([bundle, '--username', 'ci', '--password-stdin'], 'secret\n');
    const anonymous = await fetch(`${auth.url}/v2/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="airgap-bundle"');
    const ref = pathOf(images[0]!.upstream);
    const wrong = skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      'ci:wrong',
      `docker://127.0.0.1:${auth.port}/${ref}`,
    ]);
    expect(wrong.code).not.toBe(0);
    rawManifest(`127.0.0.1:${auth.port}`, ref, ['--creds', 'ci:secret']);
  });

  it('a volume set, a blob cut across volumes read in order; a set missing a volume is refused', async () => {
    const installer = images.find((i) => i.upstream.includes('installer'))!;
    const res = await runCli([
      'export',
      installer.upstream,
      '--registry-mirror',
      `*=${upstream.url}`,
      '-o',
      join(work.path, 'set.tar'),
      '--volume-size',
      String(200 * 1024),
      '--json',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const volumes = (JSON.parse(res.stdout).volumes as Array<{ path: string }>).map((v) => v.path);
    expect(execFileSync('tar', ['-xOf', volumes[0]!, 'airgap-bundle.json']).toString()).toMatch(/"parts"/);
    const set = await serve(volumes);
    const ref = pathOf(installer.upstream);
    const copied = skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      `docker://127.0.0.1:${set.port}/${ref}`,
      `dir:${join(work.path, 'set-out')}`,
    ]);
    expect(copied.code, `${ref}: ${copied.stderr}`).toBe(0);
    const partial = await runCli(['serve', ...volumes.slice(1), '--listen', '127.0.0.1:0']);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toMatch(/volume 1 of that set is missing: give every volume of the set/);
  });

  it('SIGTERM: a response under way finishes, then the process exits 0', async () => {
    const s = await serve([bundle]);
    const img = images.find((i) => i.upstream.includes('installer'))!;
    const ref = pathOf(img.upstream);
    const m = JSON.parse(rawManifest(`127.0.0.1:${s.port}`, ref).toString());
    const child = m.manifests
      ? JSON.parse(rawManifest(`127.0.0.1:${s.port}`, `${ref.split(':')[0]}@${m.manifests[0].digest}`).toString())
      : m;
    const layer = child.layers[0].digest as string;
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = request(`${s.url}/v2/${ref.split(':')[0]}/blobs/${layer}`, (res) => {
        res.pause();
        const exited = s.stop('SIGTERM');
        const parts: Buffer[] = [];
        setTimeout(() => res.resume(), 300);
        res.on('data', (c: Buffer) => parts.push(c));
        res.on(
          'end',
          () =>
            void exited.then((code) =>
              code === 0 ? resolve(Buffer.concat(parts)) : reject(new Error(`exit ${code}`)),
            ),
        );
        res.on('error', reject);
      });
      req.end();
    });
    expect(sha256(body)).toBe(layer);
  });

  it('--verify refuses a damaged bundle before listening (exit 3)', async () => {
    const damaged = join(work.path, 'damaged.tar');
    const bytes = readFileSync(bundle);
    const meta = JSON.parse((await runCli(['inspect', bundle, '--json'])).stdout);
    expect(meta.images.length).toBeGreaterThan(0);
    // A byte near the end lies inside the last blob entries (the manifests and indexes come last).
    bytes[bytes.length - 1024 - 600]! ^= 0xff;
    writeFileSync(damaged, bytes);
    const res = await runCli(['serve', damaged, '--verify', '--listen', '127.0.0.1:0']);
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toMatch(/failed --verify .*nothing is served/);
  });
});
