import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir, unexpectedOutput } from '../helpers/cli.js';
import { startServe } from '../helpers/serve-process.js';

/**
 * Files carried end to end: fetched from a classic web server of the test's own
 * (a redirect, a download cut short once, a pin that does not match) and from a
 * path, exported as a volume set (the ISO cut across volumes), imported into a
 * real registry and read back with plain HTTP as oras reads it, served at
 * /files/ and resumed with `curl -C -`, and copied out by `files`.
 */

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const TALOSCTL = randomBytes(300 * 1024);
const KERNEL = randomBytes(200 * 1024);
const ISO = randomBytes(3 * 1024 * 1024);
const NOTES = Buffer.from('release notes\n');

let upstream: RunningRegistry;
let web: Server;
let webUrl: string;
const hits = new Map<string, number>();
let work: { path: string; remove: () => Promise<void> };
let image: SampleImage;
let volumes: string[];

/** The test's web server: /dl/NAME, /redirect/NAME (302 to /dl/NAME), /flaky/NAME (cut short the first time). */
function startWeb(): Promise<Server> {
  const bodies: Record<string, Buffer> = { talosctl: TALOSCTL, vmlinuz: KERNEL, notes: NOTES };
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const [, kind, name] = path.split('/');
    const body = bodies[name ?? ''];
    if (!body) return void res.writeHead(404).end();
    if (kind === 'redirect') return void res.writeHead(302, { Location: `/dl/${name}` }).end();
    res.writeHead(200, { 'Content-Length': String(body.length) });
    if (kind === 'flaky' && hits.get(path) === 1) {
      res.write(body.subarray(0, body.length / 2));
      return void setImmediate(() => res.socket?.destroy());
    }
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  work = await tempDir('airgap-files-');
  upstream = await startRegistry();
  web = await startWeb();
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  const images = await generateSampleImages(join(work.path, 'samples'));
  image = images[0]!;
  await seedRegistry(upstream, [image]);
  writeFileSync(join(work.path, 'metal-amd64.iso'), ISO);
  chmodSync(join(work.path, 'metal-amd64.iso'), 0o750);
  const res = await runCli([
    'export',
    `${upstream.host}/${image.repository}:${image.tag}`,
    '--plain-http',
    '--file',
    `${webUrl}/redirect/talosctl#sha256=${sha(TALOSCTL)}@talosctl-linux-amd64`,
    '--file',
    `${webUrl}/flaky/vmlinuz#sha256=${sha(KERNEL)}`,
    '--file',
    `${join(work.path, 'metal-amd64.iso')}#sha256=${sha(ISO)}`,
    '--file',
    `${webUrl}/dl/notes@release notes.txt`,
    '--allow-unpinned',
    '--retries',
    '2',
    '--volume-size',
    '2M',
    '--cache-dir',
    join(work.path, 'cache'),
    '-o',
    join(work.path, 'set.tar'),
    '--json',
  ]);
  expect(res.stderr).not.toMatch(/error/);
  expect(res.code).toBe(0);
  volumes = (JSON.parse(res.stdout).volumes as Array<{ path: string }>).map((v) => v.path);
}, 120_000);

afterAll(async () => {
  await upstream?.stop();
  await new Promise((r) => (web ? web.close(r) : r(undefined)));
  await work?.remove();
});

describe('carried files', () => {
  it('followed the redirect, retried the download cut short, and spread the ISO over volumes', () => {
    expect(hits.get('/redirect/talosctl')).toBe(1);
    expect(hits.get('/dl/talosctl')).toBe(1);
    expect(hits.get('/flaky/vmlinuz')).toBe(2);
    expect(volumes.length).toBeGreaterThanOrEqual(2);
    for (const v of volumes) expect(statSync(v).size).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  it('refuses a URL file without a pin, and one whose bytes are not the pinned ones, writing nothing', async () => {
    const out = join(work.path, 'refused.tar');
    const ref = `${upstream.host}/${image.repository}:${image.tag}`;
    const unpinned = await runCli(['export', ref, '--plain-http', '--file', `${webUrl}/dl/notes`, '-o', out]);
    expect(unpinned.code).toBe(2);
    expect(unpinned.stderr).toMatch(/--file 1: .*\/dl\/notes is not pinned: add #sha256=HEX/);
    const wrong = await runCli([
      'export',
      ref,
      '--plain-http',
      '--file',
      `${webUrl}/dl/talosctl#sha256=${sha(KERNEL)}`,
      '-o',
      out,
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/not the pinned sha256:/);
    expect(hits.get('/dl/talosctl')).toBe(2); // refused at once: a complete answer with other bytes is not retried
    expect(readdirSync(work.path).filter((f) => f.startsWith('refused') || f.startsWith('.refused'))).toEqual([]);
  });

  it('imports them as OCI artifacts that read back as oras reads them, byte for byte', async () => {
    // A volume set is imported one volume at a time, as it arrives.
    for (const v of volumes) {
      const res = await runCli([
        'import',
        v,
        '--registry',
        upstream.host,
        '--plain-http',
        '--repo-prefix',
        'isolated',
        '-q',
      ]);
      expect(unexpectedOutput(res.stderr)).toEqual([]);
      expect(res.code).toBe(0);
    }
    const base = `${upstream.url}/v2/isolated/files`;
    const manifestRes = await fetch(`${base}/metal-amd64.iso/manifests/metal-amd64.iso`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(manifestRes.status).toBe(200);
    const manifest = (await manifestRes.json()) as {
      artifactType: string;
      config: { mediaType: string };
      layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }>;
    };
    expect(manifest.artifactType).toBe('application/vnd.unknown.artifact.v1');
    expect(manifest.config.mediaType).toBe('application/vnd.oci.empty.v1+json');
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]!.annotations['org.opencontainers.image.title']).toBe('metal-amd64.iso');
    expect(manifest.layers[0]!.mediaType).toBe('application/x-iso9660-image');
    const blob = Buffer.from(
      await (await fetch(`${base}/metal-amd64.iso/blobs/${manifest.layers[0]!.digest}`)).arrayBuffer(),
    );
    expect(blob.equals(ISO)).toBe(true);
    const tags = (await (await fetch(`${base}/release-notes.txt/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['release_notes.txt']);
  });

  it('serves /files/ and /files/NAME with ranges, so curl -C - resumes a download', async () => {
    const serve = await startServe(volumes);
    try {
      const index = execFileSync('curl', ['-sf', `${serve.url}/files/`]).toString();
      expect(
        index
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split('\t')[0]),
      ).toEqual(['metal-amd64.iso', 'release notes.txt', 'talosctl-linux-amd64', 'vmlinuz']);
      const head = execFileSync('curl', ['-sfI', `${serve.url}/files/metal-amd64.iso`])
        .toString()
        .toLowerCase();
      expect(head).toContain(`etag: "sha256:${sha(ISO)}"`);
      expect(head).toContain(`content-length: ${ISO.length}`);
      expect(head).toContain('accept-ranges: bytes');
      expect(head).toMatch(/last-modified: \w{3}, /);
      const partial = join(work.path, 'resumed.iso');
      writeFileSync(partial, ISO.subarray(0, 1_000_000));
      execFileSync('curl', ['-sf', '-C', '-', '-o', partial, `${serve.url}/files/metal-amd64.iso`]);
      expect(readFileSync(partial).equals(ISO)).toBe(true);
      const served = await serve.waitForLog((r) => r.path === '/files/metal-amd64.iso' && r.status === 206);
      expect(served.bytes).toBe(ISO.length - 1_000_000);
      const spaced = execFileSync('curl', ['-sf', `${serve.url}/files/release%20notes.txt`]);
      expect(spaced.equals(NOTES)).toBe(true);
    } finally {
      await serve.stop();
    }
  });

  it('files copies them out hash-checked with their modes, and refuses a damaged one, writing nothing', async () => {
    const out = join(work.path, 'out');
    const res = await runCli(['files', ...volumes, '-o', out, '--json']);
    expect(res.code).toBe(0);
    expect(readFileSync(join(out, 'metal-amd64.iso')).equals(ISO)).toBe(true);
    expect(readFileSync(join(out, 'talosctl-linux-amd64')).equals(TALOSCTL)).toBe(true);
    expect(readFileSync(join(out, 'vmlinuz')).equals(KERNEL)).toBe(true);
    expect(statSync(join(out, 'metal-amd64.iso')).mode & 0o777).toBe(0o750);
    expect(statSync(join(out, 'vmlinuz')).mode & 0o777).toBe(0o644);

    // One byte of the ISO flipped where a volume holds it: bit rot the per-volume checksum would also show.
    const hit = volumes.find((v) => readFileSync(v).includes(ISO.subarray(0, 64)))!;
    const bytes = readFileSync(hit);
    bytes[bytes.indexOf(ISO.subarray(0, 64)) + 100]! ^= 0xff;
    writeFileSync(hit, bytes);
    const damagedOut = join(work.path, 'damaged');
    const damaged = await runCli(['files', ...volumes, '-o', damagedOut, '--name', 'metal-amd64.iso']);
    expect(damaged.code).toBe(3);
    expect(damaged.stderr).toMatch(/the bytes of metal-amd64.iso do not match its digest, so it was not written/);
    expect(existsSync(damagedOut) ? readdirSync(damagedOut) : []).toEqual([]);
  });
});
