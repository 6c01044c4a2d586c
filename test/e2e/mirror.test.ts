import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import type { SampleImage } from '../../scripts/lib/samples.js';
import { exportSampleBundle } from '../helpers/sample-bundle.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { ACCEPT } from '../helpers/registry-state.js';

interface TalosMirror {
  endpoints: string[];
  overridePath?: boolean;
}

/**
 * The manifest URL a node asks for, as containerd's resolver builds it from a
 * Talos mirror: the exact registry first, then '*'; the endpoint path gets /v2
 * unless overridePath. Written here from the documented behaviour, not taken
 * from the code under test.
 */
function nodeRequest(mirrors: Record<string, TalosMirror>, reference: string): string {
  const slash = reference.indexOf('/');
  const registry = reference.slice(0, slash);
  const rest = reference.slice(slash + 1);
  const colon = rest.lastIndexOf(':');
  const repository = rest.slice(0, colon);
  const tag = rest.slice(colon + 1);
  const m = mirrors[registry] ?? mirrors['*'];
  if (!m) throw new Error(`no mirror for ${registry}`);
  const url = new URL(m.endpoints[0]!);
  let path = url.pathname.replace(/\/+$/, '');
  if (!m.overridePath) path = `${path}/v2`;
  return `${url.origin}${path}/${repository}/manifests/${tag}`;
}

/** The v1alpha1 patch's part that carries the mirrors. */
interface TalosPatch {
  machine: { registries: { mirrors: Record<string, TalosMirror> } };
}

let upstream: RunningRegistry;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
let bundle: string;
const running: RunningRegistry[] = [];

beforeAll(async () => {
  work = await tempDir();
  ({ upstream, images, bundle } = await exportSampleBundle(work.path, ['--cache-dir', join(work.path, 'cache')]));
});

afterAll(async () => {
  for (const r of running) await r.stop();
  await upstream?.stop();
  await work?.remove();
});

async function expectServedAsNodesAsk(mirrors: Record<string, TalosMirror>): Promise<void> {
  for (const img of images) {
    const url = nodeRequest(mirrors, img.upstream);
    const res = await fetch(url, { headers: { accept: ACCEPT } });
    expect(res.status, url).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`, url).toBe(img.digest);
  }
}

describe('mirror-config matches what import wrote', () => {
  it("default mapping: one '*' mirror serves every image at the path a node requests", async () => {
    const dest = await startRegistry();
    running.push(dest);
    expect((await runCli(['import', bundle, '--registry', dest.host, '--plain-http', '-q'])).code).toBe(0);
    const res = await runCli(['mirror-config', '--endpoint', dest.url, '--bundle', bundle]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/loopback/); // the test registry is on 127.0.0.1: warned, not refused
    const doc = yaml.load(res.stdout) as TalosPatch;
    expect(Object.keys(doc.machine.registries.mirrors)).toEqual(['*']);
    await expectServedAsNodesAsk(doc.machine.registries.mirrors);
  });

  it('--keep-registry-host --repo-prefix: per-registry mirrors with overridden paths, also as multi-doc', async () => {
    const dest = await startRegistry();
    running.push(dest);
    const mapping = ['--keep-registry-host', '--repo-prefix', 'airgap'];
    expect((await runCli(['import', bundle, '--registry', dest.host, '--plain-http', ...mapping, '-q'])).code).toBe(0);
    const res = await runCli(['mirror-config', '--endpoint', dest.url, '--bundle', bundle, ...mapping]);
    expect(res.code).toBe(0);
    const mirrors = (yaml.load(res.stdout) as TalosPatch).machine.registries.mirrors;
    expect(Object.keys(mirrors).sort()).toEqual([...new Set(images.map((i) => i.upstream.split('/')[0]!))].sort());
    await expectServedAsNodesAsk(mirrors);

    // No --format: for Talos 1.12+ the multi-document style its documentation recommends.
    const multi = await runCli([
      'mirror-config',
      '--talos-version',
      'v1.12',
      '--endpoint',
      dest.url,
      '--bundle',
      bundle,
      ...mapping,
    ]);
    const docs = yaml.loadAll(multi.stdout) as Array<{
      kind: string;
      name: string;
      endpoints: Array<{ url: string; overridePath?: boolean }>;
    }>;
    const fromDocs = Object.fromEntries(
      docs
        .filter((d) => d.kind === 'RegistryMirrorConfig')
        .map((d) => [d.name, { endpoints: d.endpoints.map((e) => e.url), overridePath: d.endpoints[0]!.overridePath }]),
    );
    await expectServedAsNodesAsk(fromDocs);
    expect(multi.stdout).not.toContain('machine:');

    // --format talos still forces machine.registries for 1.12, with the deprecation said.
    const forced = await runCli([
      'mirror-config',
      '--format',
      'talos',
      '--talos-version',
      'v1.12.3',
      '--endpoint',
      dest.url,
      '--bundle',
      bundle,
      ...mapping,
    ]);
    expect(forced.code).toBe(0);
    expect(Object.keys((yaml.load(forced.stdout) as TalosPatch).machine.registries.mirrors).sort()).toEqual(
      Object.keys(mirrors).sort(),
    );
    expect(forced.stderr).toMatch(/deprecated from Talos 1\.12/);

    const containerd = join(work.path, 'certs.d');
    expect(
      (
        await runCli([
          'mirror-config',
          '--format',
          'containerd',
          '--endpoint',
          dest.url,
          '--bundle',
          bundle,
          ...mapping,
          '-o',
          containerd,
        ])
      ).code,
    ).toBe(0);
    const toml = readFileSync(join(containerd, 'ghcr.io', 'hosts.toml'), 'utf8');
    expect(toml).toContain(`server = "${dest.url}/v2/airgap/ghcr.io"`);
  });

  it('refuses an endpoint without scheme and TLS options on http, with a reason', async () => {
    const noScheme = await runCli(['mirror-config', '--endpoint', '10.5.0.1:6000', '--bundle', bundle]);
    expect(noScheme.code).toBe(2);
    expect(noScheme.stderr).toMatch(/no scheme/);
    const tls = await runCli([
      'mirror-config',
      '--endpoint',
      'http://10.5.0.1:6000',
      '--insecure-skip-tls-verify',
      '--bundle',
      bundle,
    ]);
    expect(tls.code).toBe(2);
    expect(tls.stderr).toMatch(/non-HTTPS/);
  });
});

describe('image sources', () => {
  it('images merges lists, manifests and Talos configs with origins, and export takes the same sources', async () => {
    const res = await runCli([
      'images',
      '-f',
      'test/fixtures/talosctl/v1.8.0-image-default.txt',
      '--from-talos-config',
      'test/fixtures/talos-config/controlplane-v1.8.yaml',
      '--from-manifests',
      'test/fixtures/manifests',
      '--json',
    ]);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout) as { images: Array<{ reference: string; from: string[] }>; warnings: string[] };
    const kubelet = out.images.find((i) => i.reference === 'ghcr.io/siderolabs/kubelet:v1.31.1')!;
    expect(kubelet.from.some((f) => f.includes('v1.8.0-image-default.txt:8'))).toBe(true);
    expect(kubelet.from.some((f) => f.includes('machine.kubelet.image'))).toBe(true);
    expect(out.images.map((i) => i.reference)).toContain('docker.io/library/nginx:1.27');
    expect(out.warnings.join()).toMatch(/extraManifests/);

    const text = await runCli(['images', '-f', 'test/fixtures/talosctl/v1.13.9-images-default.txt']);
    expect(text.code).toBe(0);
    expect(text.stderr).toMatch(/no installer image/);
    // The printed list is itself a valid image list.
    const again = await runCli(['images', '-f', '-', '--json'], { input: text.stdout });
    expect(JSON.parse(again.stdout).images).toHaveLength(10);
  });

  it('export of workload manifests carries their images', async () => {
    const manifest = join(work.path, 'app.yaml');
    const img = images.find((i) => i.kind === 'docker-manifest')!;
    writeFileSync(
      manifest,
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec: {template: {spec: {containers: [{name: a, image: "${upstream.host}/${img.repository}:${img.tag}"}]}}}\n`,
    );
    const out = join(work.path, 'app.tar');
    const res = await runCli([
      'export',
      '--from-manifests',
      manifest,
      '-o',
      out,
      '--plain-http',
      '--cache-dir',
      join(work.path, 'cache'),
      '--json',
    ]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).images.map((i: { digest: string }) => i.digest)).toEqual([img.digest]);
  });
});
