import type { Reference } from '../reference/reference.js';

const TALOS_MARKERS = [/^siderolabs\/kubelet$/, /^talos-systems\/kubelet$/, /^siderolabs\/flannel$/];

/** The installer of the schematic without customisation, as Talos 1.14 names it by default. */
const FACTORY_INSTALLER_EXAMPLE =
  'factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:<talos-version>';

/** ghcr.io/siderolabs/installer is published up to Talos 1.13; 1.14 takes it from the Image Factory. */
const LAST_PUBLISHED_MINOR = 13;

const isInstaller = (r: Reference) =>
  /(^|\/)(installer|[a-z0-9-]+-installer)(-secureboot)?(\/|$)/.test(r.repository) ||
  /installer/.test(r.repository.split('/').pop() ?? '');

/**
 * A list that looks like a Talos cluster's (its kubelet image) but carries no
 * installer: Talos 1.12+ stopped listing the installer, and upgrades inside the
 * air gap fail without it. Returns the warning, or undefined.
 */
export function missingInstallerWarning(refs: readonly Reference[]): string | undefined {
  const kubelet = refs.find((r) => TALOS_MARKERS.some((m) => m.test(r.repository)));
  if (!kubelet) return undefined;
  if (refs.some(isInstaller)) return undefined;
  return (
    'this looks like a Talos image list but holds no installer image (talosctl 1.12+ no longer lists it); ' +
    `add it: from Talos 1.14 on the Image Factory's ${FACTORY_INSTALLER_EXAMPLE} (or --talos-schematic FILE --talos-version V for one with extensions), ` +
    'before 1.14 ghcr.io/siderolabs/installer:<talos-version>; as an argument or a line of the list'
  );
}

/**
 * `ghcr.io/siderolabs/installer` tags of Talos 1.14 or later: that image is no
 * longer published, so the export would fail on it. One warning per reference,
 * naming the factory installer to use instead.
 */
export function retiredInstallerWarnings(refs: readonly Reference[]): string[] {
  const warnings: string[] = [];
  for (const r of refs) {
    if (r.registry !== 'ghcr.io' || r.repository !== 'siderolabs/installer' || r.tag === undefined) continue;
    const m = /^v?(\d{1,3})\.(\d{1,3})\./.exec(r.tag);
    if (!m) continue;
    const major = Number(m[1]);
    const minor = Number(m[2]);
    if (major < 1 || (major === 1 && minor <= LAST_PUBLISHED_MINOR)) continue;
    const tag = r.tag.startsWith('v') ? r.tag : `v${r.tag}`;
    warnings.push(
      `ghcr.io/siderolabs/installer:${r.tag} is no longer published (Talos 1.14 moved the installer to the Image Factory): ` +
        `use ${FACTORY_INSTALLER_EXAMPLE.replace('<talos-version>', tag)}, or --talos-schematic FILE --talos-version ${tag} for one with extensions`,
    );
  }
  return warnings;
}

/** Every installer warning for a list: the missing installer, and retired installer tags. */
export function installerWarnings(refs: readonly Reference[]): string[] {
  const missing = missingInstallerWarning(refs);
  return [...(missing ? [missing] : []), ...retiredInstallerWarnings(refs)];
}
