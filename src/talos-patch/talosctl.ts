import type { MirrorPlan } from '../mirror/plan.js';
import { talosctlFlags, unsaidByTalosctlFlags } from '../mirror/talos-version.js';
import type { AirgapSettings } from './settings.js';

/**
 * The part of the patch `talosctl gen config` and `talosctl cluster create`
 * can say with flags, and the settings that still need `--config-patch`.
 */
export interface TalosctlForm {
  /** One line of flags, ending in a newline. */
  flags: string;
  /** Settings the flags cannot carry, each named by the option that asked for it. */
  needPatch: string[];
}

// The characters of a normalised image reference: anything else is not written into a command line.
const REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._:/@-]*$/;

/** The installer among the bundle's references: `…/installer:TAG`, or an Image Factory `…-installer/ID:TAG`. */
export function installerReference(references: string[]): string | undefined {
  return references.find((r) => REFERENCE.test(r) && /(^|\/|-)installer(\/[^/:@]+)?[:@]/.test(r));
}

export function talosctlForm(plan: MirrorPlan, settings: AirgapSettings, installer: string | undefined): TalosctlForm {
  // Mirrors flags cannot say in full are left to the patch whole: a part of them would mislead.
  const unsaid = unsaidByTalosctlFlags(plan);
  const flags = unsaid.length === 0 ? [talosctlFlags(plan).trimEnd()] : [];
  if (installer) flags.push(`--install-image ${installer}`);
  if (settings.discovery.kind === 'off') flags.push('--with-cluster-discovery=false');
  const needPatch = [
    ...(unsaid.length > 0 ? [`the registry mirrors (${unsaid.join(', ')})`] : []),
    ...(settings.timeServers.length > 0 ? ['--time-server'] : []),
    ...(settings.nameservers.length > 0 ? ['--nameserver'] : []),
    ...(settings.searchDomains.length > 0 ? ['--search-domain'] : []),
    ...(settings.discovery.kind === 'endpoint' ? ['--discovery-endpoint'] : []),
    ...(settings.imageCache ? ['--image-cache'] : []),
  ];
  return { flags: `${flags.join(' ')}\n`, needPatch };
}
