import type { Reference } from '../reference/reference.js';

const TALOS_MARKERS = [/^siderolabs\/kubelet$/, /^talos-systems\/kubelet$/, /^siderolabs\/flannel$/];

/**
 * A list that looks like a Talos cluster's (its kubelet image) but carries no
 * installer: Talos 1.12+ stopped listing the installer, and upgrades inside the
 * air gap fail without it. Returns the warning, or undefined.
 */
export function missingInstallerWarning(refs: readonly Reference[]): string | undefined {
  const kubelet = refs.find((r) => TALOS_MARKERS.some((m) => m.test(r.repository)));
  if (!kubelet) return undefined;
  const hasInstaller = refs.some(
    (r) =>
      /(^|\/)(installer|metal-installer)(\/|$)/.test(r.repository) ||
      /installer/.test(r.repository.split('/').pop() ?? ''),
  );
  if (hasInstaller) return undefined;
  return (
    'this looks like a Talos image list but holds no installer image (talosctl 1.12+ no longer lists it); ' +
    'add it, e.g. ghcr.io/siderolabs/installer:<talos-version> or factory.talos.dev/metal-installer/<schematic-id>:<talos-version>, as an argument or a line of the list'
  );
}
