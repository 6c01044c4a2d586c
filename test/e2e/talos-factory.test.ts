import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { pushImage } from '../helpers/push-image.js';
import { tags } from '../helpers/registry-state.js';

// The Image Factory options end to end: the schematic's ID computed offline and the installer named
// as the Talos version names it, the retired ghcr.io installer warned about, and a factory installer
// fetched through a mirror (a real registry standing in for factory.talos.dev: no network here),
// carried under its factory name and imported with the host kept. No boot media: they need the factory.

// siderolabs/image-factory pkg/schematic/schematic_test.go, as pinned in test/unit/talos-factory.test.ts.
const KERNEL_ARGS_SCHEMATIC = '{"customization": {"extraKernelArgs": ["noapic", "nolapic"]}}';
const KERNEL_ARGS_ID = '9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c';
/** The schematic without customisation: what --talos-version alone takes. */
const EMPTY_ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';
const INSTALLER_REPO = `metal-installer/${EMPTY_ID}`;

let registry: RunningRegistry;
let work: { path: string; remove: () => Promise<void> };
let installerDigest: string;

beforeAll(async () => {
  work = await tempDir();
  registry = await startRegistry();
  installerDigest = (await pushImage(registry, INSTALLER_REPO, 'v1.14.0')).digest;
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  await work?.remove();
});

describe('images with the Image Factory options', () => {
  it('prints the installer of the schematic, named as the Talos version names it', async () => {
    const schematic = join(work.path, 'schematic.yaml');
    await writeFile(schematic, KERNEL_ARGS_SCHEMATIC);
    const listed = await Promise.all(
      ['v1.14.0', 'v1.13.2'].map((v) => runCli(['images', '--talos-schematic', schematic, '--talos-version', v])),
    );
    for (const r of listed) expect(r.code, r.stderr).toBe(0);
    expect(listed[0]!.stdout.split('\n')[0]).toMatch(
      new RegExp(`^factory\\.talos\\.dev/metal-installer/${KERNEL_ARGS_ID}:v1\\.14\\.0  # from `),
    );
    expect(listed[0]!.stderr).toContain(`ID ${KERNEL_ARGS_ID}`);
    expect(listed[1]!.stdout.split('\n')[0]).toMatch(
      new RegExp(`^factory\\.talos\\.dev/installer/${KERNEL_ARGS_ID}:v1\\.13\\.2  # from `),
    );
  });

  it('warns that ghcr.io/siderolabs/installer is no longer published from Talos 1.14', async () => {
    const r = await runCli(['images', 'ghcr.io/siderolabs/installer:v1.14.0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        `warning: ghcr\\.io/siderolabs/installer:v1\\.14\\.0 is no longer published .*factory\\.talos\\.dev/metal-installer/${EMPTY_ID}:v1\\.14\\.0`,
      ),
    );
  });
});

describe('export --talos-version through a mirror, then import with the host kept', () => {
  it('carries the factory installer under its factory name and lands it under factory.talos.dev/', async () => {
    const bundle = join(work.path, 'factory.tar');
    const exported = await runCli([
      'export',
      '--talos-version',
      'v1.14.0',
      '--registry-mirror',
      `factory.talos.dev=${registry.url}`,
      '--plain-http',
      '-o',
      bundle,
      '--cache-dir',
      join(work.path, 'cache'),
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    const inspected = await runCli(['inspect', bundle, '--json']);
    expect(inspected.code, inspected.stderr).toBe(0);
    const images = (JSON.parse(inspected.stdout) as { images: Array<{ reference: string; digest: string }> }).images;
    expect(images.map((i) => [i.reference, i.digest])).toEqual([
      [`factory.talos.dev/${INSTALLER_REPO}:v1.14.0`, installerDigest],
    ]);

    const imported = await runCli([
      'import',
      bundle,
      '--registry',
      registry.host,
      '--plain-http',
      '--keep-registry-host',
    ]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(await tags(registry.url, `factory.talos.dev/${INSTALLER_REPO}`)).toEqual(['v1.14.0']);
  });
});
