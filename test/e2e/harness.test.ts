// Proves the test harness itself is real: actual registries, actual auth, actual skopeo, and
// sample images whose digests survive a round trip. Every other e2e suite builds on these.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import {
  generateSampleImages,
  MediaTypes,
  seedRegistry,
  talosLikeList,
  type SampleImage,
} from '../../scripts/lib/samples.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { sha256Digest } from '../../scripts/lib/digest.js';

const execFileP = promisify(execFile);

const sha256 = sha256Digest;

const ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest].join(
  ', ',
);

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP(S) request with the whole body collected; rejects on socket errors. */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; ca?: string; auth?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const headers = { ...opts.headers };
    if (opts.auth) headers.authorization = opts.auth;
    const req = mod.request(url, { method: opts.method ?? 'GET', headers, ca: opts.ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function inspectRaw(reg: RunningRegistry, ref: string): Promise<Buffer> {
  const { stdout } = await execFileP(
    'skopeo',
    ['--insecure-policy', 'inspect', '--raw', ...reg.skopeoArgs(), `docker://${reg.host}/${ref}`],
    {
      encoding: 'buffer',
    },
  );
  return stdout;
}

const registries: RunningRegistry[] = [];
async function registry(opts?: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
  const reg = await startRegistry(opts);
  registries.push(reg);
  return reg;
}

let work: string;
let images: SampleImage[];
const byRepo = (repo: string) => images.find((i) => i.repository === repo)!;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'harness-test-'));
  images = await generateSampleImages(path.join(work, 'a'));
});

afterAll(async () => {
  await Promise.all(registries.map((r) => r.stop()));
  await rm(work, { recursive: true, force: true });
});

describe('registry process', () => {
  it('starts a plain registry that answers /v2/ and stops it cleanly', async () => {
    const reg = await startRegistry();
    expect(reg.url).toBe(`http://${reg.host}`);
    const res = await request(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect(reg.skopeoArgs('dest')).toEqual(['--dest-tls-verify=false']);

    await reg.stop();
    await reg.stop(); // idempotent
    await expect(request(`${reg.url}/v2/`)).rejects.toThrow(/ECONNREFUSED/);
    expect(existsSync(reg.storageDir)).toBe(false);
  });
});

describe('sample images', () => {
  it('are byte-identical across generations and change with the seed', async () => {
    const again = await generateSampleImages(path.join(work, 'b'));
    expect(again.map((i) => i.digest)).toEqual(images.map((i) => i.digest));
    expect(again.map((i) => i.size)).toEqual(images.map((i) => i.size));

    const other = await generateSampleImages(path.join(work, 'c'), { seed: 2, layerBytes: 1024 });
    for (const [i, img] of other.entries()) expect(img.digest).not.toBe(images[i]!.digest);
  });

  it('cover every manifest kind, with sources that hold the recorded bytes', async () => {
    const count = (kind: string) => images.filter((i) => i.kind === kind).length;
    expect(count('oci-index')).toBeGreaterThanOrEqual(3);
    expect(count('docker-list')).toBeGreaterThanOrEqual(2);
    expect(count('oci-manifest')).toBeGreaterThanOrEqual(1);
    expect(count('docker-manifest')).toBeGreaterThanOrEqual(1);
    expect(images.some((i) => i.platforms.includes('linux/arm/v7'))).toBe(true);

    const layout = path.join(work, 'a', 'oci');
    const blobPath = (digest: string) => path.join(layout, 'blobs', 'sha256', digest.slice(7));
    for (const img of images) {
      const file = img.source.startsWith('oci:')
        ? blobPath(img.digest)
        : path.join(img.source.slice('dir:'.length), 'manifest.json');
      const bytes = await readFile(file);
      expect(sha256(bytes)).toBe(img.digest);
      expect(JSON.parse(bytes.toString()).mediaType).toBe(img.mediaType);
    }

    // The kube-* images share their base layer per platform, like real image families.
    const firstLayer = async (repo: string) => {
      const index = JSON.parse((await readFile(blobPath(byRepo(repo).digest))).toString());
      const amd64 = index.manifests.find((m: any) => m.platform.architecture === 'amd64');
      return JSON.parse((await readFile(blobPath(amd64.digest))).toString()).layers[0].digest as string;
    };
    expect(await firstLayer('kube-apiserver')).toBe(await firstLayer('kube-scheduler'));
    expect(await firstLayer('kube-apiserver')).not.toBe(await firstLayer('siderolabs/kubelet'));
  });
});

describe('seeded plain registry and fault proxy', () => {
  let reg: RunningRegistry;
  beforeAll(async () => {
    reg = await registry();
    await seedRegistry(reg, images);
  });

  it('serves every sample with its exact digest and media type', async () => {
    for (const img of images) {
      const raw = await inspectRaw(reg, `${img.repository}:${img.tag}`);
      expect(sha256(raw), img.upstream).toBe(img.digest);
      expect(JSON.parse(raw.toString()).mediaType).toBe(img.mediaType);
    }
    // The attestation manifests travelled too (skopeo --all copies unknown/unknown entries).
    const kubelet = JSON.parse(
      (await inspectRaw(reg, `siderolabs/kubelet@${byRepo('siderolabs/kubelet').digest}`)).toString(),
    );
    const attestations = kubelet.manifests.filter(
      (m: any) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest',
    );
    expect(attestations).toHaveLength(2);
    const head = await request(`${reg.url}/v2/siderolabs/kubelet/manifests/${attestations[0].digest}`, {
      method: 'HEAD',
      headers: { accept: ACCEPT },
    });
    expect(head.status).toBe(200);

    const lines = talosLikeList(images, reg.host).trimEnd().split('\n');
    expect(lines).toHaveLength(images.length);
    expect(lines).toContain(`${reg.host}/siderolabs/kubelet:v1.31.1`);
  });

  it("injects 'status' faults a limited number of times", async () => {
    const proxy = await startFaultProxy(reg.url, [
      { match: (m, p) => m === 'GET' && p === '/v2/', fault: { kind: 'status', status: 503, retryAfter: 2 }, times: 1 },
    ]);
    try {
      const first = await request(`${proxy.url}/v2/`);
      expect(first.status).toBe(503);
      expect(first.headers['retry-after']).toBe('2');
      expect((await request(`${proxy.url}/v2/`)).status).toBe(200);
      expect(proxy.requests.map((r) => [r.status, r.faulted])).toEqual([
        [503, true],
        [200, false],
      ]);
    } finally {
      await proxy.stop();
    }
  });

  it("'corrupt' flips one byte, and upload Locations point back at the proxy", async () => {
    const busybox = JSON.parse((await inspectRaw(reg, 'library/busybox:1.36')).toString());
    const layer = busybox.layers[0] as { digest: string; size: number };
    const blobPath = `/v2/library/busybox/blobs/${layer.digest}`;
    const proxy = await startFaultProxy(reg.url);
    try {
      const clean = await request(`${proxy.url}${blobPath}`);
      expect(sha256(clean.body)).toBe(layer.digest);

      proxy.rules.push({ match: (_m, p) => p === blobPath, fault: { kind: 'corrupt' } });
      const bad = await request(`${proxy.url}${blobPath}`);
      expect(bad.status).toBe(200);
      expect(bad.body.length).toBe(layer.size);
      expect(sha256(bad.body)).not.toBe(layer.digest);
      expect([...bad.body].filter((b, i) => b !== clean.body[i])).toHaveLength(1);

      const upload = await request(`${proxy.url}/v2/library/busybox/blobs/uploads/`, { method: 'POST' });
      expect(upload.status).toBe(202);
      expect(upload.headers.location).toMatch(new RegExp(`^${proxy.url}/v2/library/busybox/blobs/uploads/`));
    } finally {
      await proxy.stop();
    }
  });

  it("'truncate' and 'reset' break the body mid-way", async () => {
    const busybox = JSON.parse((await inspectRaw(reg, 'library/busybox:1.36')).toString());
    const blobPath = `/v2/library/busybox/blobs/${busybox.layers[0].digest}`;
    const proxy = await startFaultProxy(reg.url, [
      { match: (_m, p) => p === blobPath, fault: { kind: 'truncate' }, times: 1 },
      { match: (_m, p) => p === blobPath, fault: { kind: 'reset' }, times: 1 },
    ]);
    try {
      await expect(request(`${proxy.url}${blobPath}`)).rejects.toThrow(/aborted|ECONNRESET|premature/i);
      await expect(request(`${proxy.url}${blobPath}`)).rejects.toThrow(/aborted|ECONNRESET|premature/i);
      expect(proxy.requests.every((r) => r.faulted)).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it("'stall' sends headers and then nothing until the proxy stops", async () => {
    const proxy = await startFaultProxy(reg.url, [{ match: () => true, fault: { kind: 'stall' } }]);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${proxy.url}/v2/`, resolve).on('error', reject),
    );
    expect(res.statusCode).toBe(200);
    let ended = false;
    const closed = new Promise<void>((resolve) =>
      res
        .on('close', resolve)
        .on('end', () => (ended = true))
        .resume(),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(ended).toBe(false);
    await proxy.stop();
    await closed;
    expect(ended).toBe(false);
  });
});

describe('authenticated registries', () => {
  it('htpasswd: 401 without or with wrong credentials, 200 with them', async () => {
    const reg = await registry({ auth: 'htpasswd' });
    const anon = await request(`${reg.url}/v2/`);
    expect(anon.status).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/^Basic realm=/);
    expect((await request(`${reg.url}/v2/`, { auth: basic(reg.username!, 'wrong') })).status).toBe(401);
    expect((await request(`${reg.url}/v2/`, { auth: basic(reg.username!, reg.password!) })).status).toBe(200);
  });

  it('tls: trusted through the CA only, and skopeo pushes with the cert dir', async () => {
    const reg = await registry({ tls: true });
    expect(reg.url).toBe(`https://${reg.host}`);
    const ca = await readFile(reg.caFile!, 'utf8');
    expect((await request(`${reg.url}/v2/`, { ca })).status).toBe(200);
    await expect(request(`${reg.url}/v2/`)).rejects.toThrow(/certificate/i);

    const busybox = byRepo('library/busybox');
    await seedRegistry(reg, [busybox]);
    expect(sha256(await inspectRaw(reg, 'library/busybox:1.36'))).toBe(busybox.digest);
  });

  it('token: Bearer challenge, scoped tokens, and skopeo with --creds', async () => {
    const reg = await registry({ auth: 'token' });
    const challenge = await request(`${reg.url}/v2/`);
    expect(challenge.status).toBe(401);
    expect(challenge.headers['www-authenticate']).toBe(
      `Bearer realm="${reg.tokenServer!.url}",service="test-registry"`,
    );

    const fetchToken = async (scope: string, auth?: string) => {
      const res = await request(`${reg.tokenServer!.url}?service=test-registry&scope=${encodeURIComponent(scope)}`, {
        auth,
      });
      return { status: res.status, token: res.status === 200 ? (JSON.parse(res.body.toString()).token as string) : '' };
    };
    expect((await fetchToken('repository:pause:pull', basic(reg.username!, 'wrong'))).status).toBe(401);
    const { token } = await fetchToken('repository:pause:pull', basic(reg.username!, reg.password!));
    expect((await request(`${reg.url}/v2/`, { auth: `Bearer ${token}` })).status).toBe(200);
    // Anonymous requests get a token with no access: fine for /v2/, refused for a repository.
    const anon = await fetchToken('repository:pause:pull');
    expect((await request(`${reg.url}/v2/pause/tags/list`, { auth: `Bearer ${anon.token}` })).status).toBe(401);

    const before = reg.tokenServer!.issued;
    const pushed = [byRepo('pause'), byRepo('library/busybox')];
    await seedRegistry(reg, pushed);
    expect(reg.tokenServer!.issued).toBeGreaterThan(before);
    for (const img of pushed) expect(sha256(await inspectRaw(reg, `${img.repository}:${img.tag}`))).toBe(img.digest);
    const tags = await request(`${reg.url}/v2/pause/tags/list`, { auth: `Bearer ${token}` });
    expect(JSON.parse(tags.body.toString())).toEqual({ name: 'pause', tags: ['3.9'] });
  });

  it('token: anonymous pull only when allowed', async () => {
    const reg = await registry({ auth: 'token', allowAnonymousPull: true });
    const res = await request(`${reg.tokenServer!.url}?service=test-registry&scope=repository:pause:pull,push`);
    const { token } = JSON.parse(res.body.toString()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims.access).toEqual([{ type: 'repository', name: 'pause', actions: ['pull'] }]);
    // Past authorization the registry reports the repository as unknown; a push is still refused.
    expect((await request(`${reg.url}/v2/pause/tags/list`, { auth: `Bearer ${token}` })).status).toBe(404);
    expect(
      (await request(`${reg.url}/v2/pause/blobs/uploads/`, { method: 'POST', auth: `Bearer ${token}` })).status,
    ).toBe(401);
  });
});
