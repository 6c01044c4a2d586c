// --keep-registry-host with Image Factory images: factory.talos.dev maps like any other host, in the
// repository import writes, the path serve answers and the mirror a node is given.
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { planMirrors } from '../../src/mirror/plan.js';
import { talosPatch } from '../../src/mirror/talos.js';
import { parseReference } from '../../src/reference/reference.js';
import { repositoryMapping, targetRepository } from '../../src/reference/mapping.js';
import { installerImage, parseTalosRelease } from '../../src/talos-factory/assets.js';

const ID = 'ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515';
const installer = parseReference(
  installerImage({ schematicId: ID, release: parseTalosRelease('v1.14.0'), platform: 'metal', secureBoot: false }),
);

describe('factory.talos.dev images under --keep-registry-host', () => {
  it('go under their host, after a prefix, and at the root without the option', () => {
    expect(targetRepository(installer, repositoryMapping(true))).toBe(`factory.talos.dev/metal-installer/${ID}`);
    expect(targetRepository(installer, repositoryMapping(true, 'airgap'))).toBe(
      `airgap/factory.talos.dev/metal-installer/${ID}`,
    );
    expect(targetRepository(installer, repositoryMapping(false))).toBe(`metal-installer/${ID}`);
  });

  it('get a mirror of their own pointing at that path, beside ghcr.io', () => {
    const plan = planMirrors({
      endpoint: 'http://10.5.0.1:6000',
      registries: ['ghcr.io', 'factory.talos.dev'],
      keepRegistryHost: true,
      skipFallback: true,
      insecureSkipVerify: false,
    });
    expect(plan.entries).toEqual([
      { registry: 'factory.talos.dev', url: 'http://10.5.0.1:6000/v2/factory.talos.dev', overridePath: true },
      { registry: 'ghcr.io', url: 'http://10.5.0.1:6000/v2/ghcr.io', overridePath: true },
    ]);
    const patch = yaml.load(talosPatch(plan)) as {
      machine: { registries: { mirrors: Record<string, { endpoints: string[]; overridePath?: boolean }> } };
    };
    expect(patch.machine.registries.mirrors['factory.talos.dev']).toMatchObject({
      endpoints: ['http://10.5.0.1:6000/v2/factory.talos.dev'],
      overridePath: true,
    });
  });
});
