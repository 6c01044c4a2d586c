import { describe, expect, it } from 'vitest';
import { parseReference } from '../../src/reference/reference.js';
import { installerWarnings, missingInstallerWarning, retiredInstallerWarnings } from '../../src/sources/talos-hints.js';

const refs = (...names: string[]) => names.map((n) => parseReference(n));
const KUBELET = 'ghcr.io/siderolabs/kubelet:v1.36.3';
const EMPTY = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

describe('a Talos list without an installer', () => {
  it('names the Image Factory installer to add (1.14+), and the ghcr.io one before 1.14', () => {
    const warning = missingInstallerWarning(refs(KUBELET, 'registry.k8s.io/pause:3.10.1'));
    expect(warning).toContain(`factory.talos.dev/metal-installer/${EMPTY}:<talos-version>`);
    expect(warning).toContain('--talos-schematic FILE --talos-version V');
    expect(warning).toContain('before 1.14 ghcr.io/siderolabs/installer:<talos-version>');
  });

  it('is quiet when a factory installer of any naming is listed, or when the list is not Talos', () => {
    for (const installer of [
      `factory.talos.dev/metal-installer/${EMPTY}:v1.14.0`,
      `factory.talos.dev/aws-installer-secureboot/${EMPTY}:v1.14.0`,
      `factory.talos.dev/installer/${EMPTY}:v1.13.9`,
      'ghcr.io/siderolabs/installer:v1.13.9',
    ])
      expect(missingInstallerWarning(refs(KUBELET, installer)), installer).toBeUndefined();
    expect(missingInstallerWarning(refs('busybox:1.36'))).toBeUndefined();
  });
});

describe('a retired ghcr.io/siderolabs/installer tag', () => {
  it('warns for 1.14 and later, with the factory name for that version', () => {
    expect(retiredInstallerWarnings(refs('ghcr.io/siderolabs/installer:v1.14.0'))).toEqual([
      'ghcr.io/siderolabs/installer:v1.14.0 is no longer published (Talos 1.14 moved the installer to the Image Factory): ' +
        `use factory.talos.dev/metal-installer/${EMPTY}:v1.14.0, or --talos-schematic FILE --talos-version v1.14.0 for one with extensions`,
    ]);
    expect(
      retiredInstallerWarnings(
        refs('ghcr.io/siderolabs/installer:v1.14.0-rc.1', 'ghcr.io/siderolabs/installer:v2.0.3'),
      ),
    ).toHaveLength(2);
  });

  it('is quiet for the releases still published, other repositories and digests', () => {
    expect(
      retiredInstallerWarnings(
        refs(
          'ghcr.io/siderolabs/installer:v1.13.9',
          'ghcr.io/siderolabs/installer:v0.15.0',
          'ghcr.io/siderolabs/installer-base:v1.14.0',
          'example.com/siderolabs/installer:v1.14.0',
          `ghcr.io/siderolabs/installer@sha256:${'a'.repeat(64)}`,
        ),
      ),
    ).toEqual([]);
  });

  it('together: a 1.14 list with only the retired installer gets that warning, not the missing one', () => {
    const warnings = installerWarnings(refs(KUBELET, 'ghcr.io/siderolabs/installer:v1.14.1'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/installer:v1\.14\.1 is no longer published/);
  });
});
