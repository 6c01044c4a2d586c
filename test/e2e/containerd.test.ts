// containerd as the real consumer of what the tool writes for it: every certs.d folder that
// `mirror-config --format containerd` writes must make a private containerd 1.6 (Debian 12's, which
// refuses a hosts.toml without any [host] table) fetch every sample image from the registry the
// bundle was imported into, and unpack one; and `ctr images import` must load a bundle that carries
// signatures, with its defaults (which unpack). The images' own registries (ghcr.io, registry.k8s.io…)
// are unreachable here, so a fetch that succeeds went through the mirror.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import type { SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startContainerd, type PrivateContainerd } from '../helpers/containerd.js';
import { pushSignedImage } from '../helpers/signed-image.js';
import { exportSampleBundle, type SampleBundle } from '../helpers/sample-bundle.js';

let upstream: RunningRegistry;
let containerd: PrivateContainerd;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
let bundle: string;
const running: RunningRegistry[] = [];

beforeAll(async () => {
  work = await tempDir();
  let sample: SampleBundle;
  [sample, containerd] = await Promise.all([exportSampleBundle(work.path), startContainerd()]);
  ({ upstream, images, bundle } = sample);
});

afterAll(async () => {
  for (const r of running) await r.stop();
  await upstream?.stop();
  await containerd?.stop();
  await work?.remove();
});

/** A registry filled by `import` with the given mapping, and the certs.d folder mirror-config writes for it. */
async function importAndConfigure(
  name: string,
  mapping: string[],
  opts: { tls?: boolean } = {},
): Promise<{ dest: RunningRegistry; hostsDir: string }> {
  const dest = await startRegistry({ tls: opts.tls ?? false });
  running.push(dest);
  const reach = opts.tls ? ['--ca-file', dest.caFile!] : ['--plain-http'];
  const imported = await runCli(['import', bundle, '--registry', dest.host, ...reach, ...mapping, '-q']);
  expect(imported.code, imported.stderr).toBe(0);
  const hostsDir = join(work.path, `certs.d-${name}`);
  const trust = opts.tls ? ['--ca-file', dest.caFile!] : [];
  const written = await runCli([
    'mirror-config',
    '--format',
    'containerd',
    '--endpoint',
    dest.url,
    '--bundle',
    bundle,
    ...mapping,
    ...trust,
    '-o',
    hostsDir,
  ]);
  expect(written.code, written.stderr).toBe(0);
  return { dest, hostsDir };
}

function expectEveryImageFetched(hostsDir: string, namespace: string): void {
  for (const img of images) {
    const r = containerd.ctr(['content', 'fetch', '--hosts-dir', hostsDir, '--all-platforms', img.upstream], namespace);
    expect(r.code, `${img.upstream}: ${r.stderr}\n${containerd.log().slice(-1500)}`).toBe(0);
  }
}

function expectUnpacked(hostsDir: string, namespace: string, reference: string): void {
  const pulled = containerd.ctr(
    ['images', 'pull', '--snapshotter', 'native', '--hosts-dir', hostsDir, reference],
    namespace,
  );
  expect(pulled.code, `${reference}: ${pulled.stderr}`).toBe(0);
  const listed = containerd.ctr(['images', 'check'], namespace);
  expect(listed.stdout).toMatch(new RegExp(`${reference.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s.*complete`));
}

describe('containerd reads the hosts.toml folders mirror-config writes', () => {
  it("host-stripped '*' mirror (_default): every image fetched through the mirror, one unpacked", async () => {
    const { hostsDir } = await importAndConfigure('default', []);
    expectEveryImageFetched(hostsDir, 'default-mapping');
    expectUnpacked(hostsDir, 'default-mapping', images[0]!.upstream);
  });

  it('--keep-registry-host: one folder per registry, override_path', async () => {
    const { hostsDir } = await importAndConfigure('keep-host', ['--keep-registry-host']);
    expectEveryImageFetched(hostsDir, 'keep-host');
  });

  it('--repo-prefix: the prefix in the host path', async () => {
    const { hostsDir } = await importAndConfigure('prefix', ['--repo-prefix', 'airgap']);
    expectEveryImageFetched(hostsDir, 'prefix');
  });

  it('a TLS registry trusted through the ca.crt written beside hosts.toml', async () => {
    const { hostsDir } = await importAndConfigure('tls', [], { tls: true });
    expectEveryImageFetched(hostsDir, 'tls');
  });
});

describe('ctr images import loads a bundle', () => {
  it('with signatures: exit 0 with its defaults (which unpack every named image), images listed under their references, signatures travelling unnamed', async () => {
    const signedRegistry = await startRegistry();
    running.push(signedRegistry);
    const signed = await pushSignedImage(signedRegistry, 'signed/app', 'v1');
    const withSignatures = join(work.path, 'signed.tar');
    const reference = `${signedRegistry.host}/signed/app:v1`;
    const exported = await runCli([
      'export',
      reference,
      images[0]!.upstream,
      '--registry-mirror',
      `${images[0]!.upstream.split('/')[0]}=${upstream.url}`,
      '--plain-http',
      '-o',
      withSignatures,
      '-q',
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    const inspected = JSON.parse((await runCli(['inspect', withSignatures, '--json'])).stdout) as {
      images: Array<{ reference: string; artifactOf?: string }>;
    };
    // The bundle carries the signature (for `airgap-bundle import`); containerd is not asked to keep it.
    expect(
      inspected.images.some((i) => i.artifactOf === reference && i.reference.endsWith(`:${signed.signatureTag}`)),
    ).toBe(true);

    const imported = containerd.ctr(
      ['images', 'import', '--snapshotter', 'native', '--all-platforms', withSignatures],
      'ctr-import',
    );
    expect(imported.code, imported.stderr).toBe(0);
    const listed = containerd.ctr(['images', 'list', '-q'], 'ctr-import').stdout.split('\n').filter(Boolean);
    expect(listed.sort()).toEqual([reference, images[0]!.upstream].sort());
    const checked = containerd.ctr(['images', 'check'], 'ctr-import');
    expect(checked.stdout.split('\n').filter((l) => /complete/.test(l))).toHaveLength(2);
  });
});
