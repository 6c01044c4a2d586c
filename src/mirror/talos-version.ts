import { UserInputError } from '../util/user-input.js';
import type { MirrorPlan } from './plan.js';

/**
 * Which Talos a mirror config is for, as `talosctl gen config --talos-version`
 * takes it (`v1.8`, `1.12.3`). Talos refuses unknown keys, so a field emitted
 * for a version that lacks it breaks the node's config: every field below is
 * emitted only for the versions whose machine-config schema has it.
 */
export interface TalosVersion {
  major: number;
  minor: number;
}

/** `machine.registries.mirrors.*.skipFallback` appeared in Talos 1.9. */
export const SKIP_FALLBACK_SINCE: TalosVersion = { major: 1, minor: 9 };
/** RegistryMirrorConfig/RegistryAuthConfig/RegistryTLSConfig documents, and `machine.registries` deprecated, in 1.12. */
export const MULTIDOC_SINCE: TalosVersion = { major: 1, minor: 12 };

export function parseTalosVersion(text: string): TalosVersion {
  const m = /^v?(\d{1,3})\.(\d{1,3})(?:\.\d{1,4})?(?:-[0-9A-Za-z.-]+)?$/.exec(text.trim());
  if (!m) throw new UserInputError(`--talos-version "${text}" is not a Talos version (v1.8, 1.12.3)`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

export function atLeast(v: TalosVersion, since: TalosVersion): boolean {
  return v.major > since.major || (v.major === since.major && v.minor >= since.minor);
}

export const formatTalosVersion = (v: TalosVersion) => `v${v.major}.${v.minor}`;

/** The Talos patch styles: `machine.registries` (v1alpha1) or the 1.12+ documents. */
export type TalosFormat = 'talos' | 'talos-multidoc';

/**
 * The style written when `--format` is not given: the one the asked version's documentation
 * recommends. From 1.12 on that is the multi-document style (its published v1alpha1 schema no
 * longer lists `machine.registries`); before 1.12, and without a version (a patch for 1.9 and
 * later), the v1alpha1 patch every release reads.
 */
export function defaultTalosFormat(version: TalosVersion | undefined): TalosFormat {
  return version && atLeast(version, MULTIDOC_SINCE) ? 'talos-multidoc' : 'talos';
}

/**
 * What the chosen format and version mean for the fields emitted: whether
 * skipFallback may be written, and the warnings (or the refusal) to give.
 */
export function talosFieldsFor(
  format: TalosFormat,
  version: TalosVersion | undefined,
  skipFallback: boolean,
): { skipFallback: boolean; warnings: string[] } {
  if (!version) {
    const note = skipFallback
      ? ['the patch sets skipFallback, which Talos reads from 1.9 on; for Talos 1.8 or older pass --talos-version v1.8']
      : [];
    return { skipFallback, warnings: format === 'talos' ? note : [] };
  }
  const v = formatTalosVersion(version);
  if (format === 'talos-multidoc') {
    if (!atLeast(version, MULTIDOC_SINCE))
      throw new UserInputError(`--format talos-multidoc needs Talos 1.12 or later (${v} asked): use --format talos`);
    return { skipFallback, warnings: [] };
  }
  const warnings: string[] = [];
  if (atLeast(version, MULTIDOC_SINCE))
    warnings.push(
      `machine.registries is deprecated from Talos 1.12 on (${v} asked): --format talos forces it; without --format the multi-document style is written`,
    );
  if (skipFallback && !atLeast(version, SKIP_FALLBACK_SINCE)) {
    warnings.push(
      `Talos ${v} has no skipFallback (added in 1.9): left out, so nodes try the upstream registries when the mirror fails`,
    );
    return { skipFallback: false, warnings };
  }
  return { skipFallback, warnings };
}

/** Shell-quotes one word for a copy-and-paste command line. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What of the plan `talosctl` flags cannot say: an overridePath layout, a CA, credentials. */
export function unsaidByTalosctlFlags(plan: MirrorPlan): string[] {
  const o = plan.options;
  return [
    ...(plan.entries.some((e) => e.overridePath)
      ? ['mirror endpoints with overridePath (--keep-registry-host or --repo-prefix)']
      : []),
    ...(o.caPem ? ['a private CA (--ca-file)'] : []),
    ...(o.auth ? ['credentials'] : []),
  ];
}

/**
 * The flags `talosctl cluster create` and `talosctl gen config` take for the
 * mirrors: `--registry-mirror HOST=URL` per mirror and
 * `--registry-insecure-skip-verify HOST`. What flags cannot say is refused
 * with the format that can: an overridePath layout, a CA, credentials.
 */
export function talosctlFlags(plan: MirrorPlan): string {
  const o = plan.options;
  const unsaid = unsaidByTalosctlFlags(plan);
  if (unsaid.length > 0) {
    throw new UserInputError(
      `talosctl flags cannot express ${unsaid.join(', ')}: use --format talos (or talos-multidoc) and pass the file with --config-patch`,
    );
  }
  const flags = plan.entries.map((e) => `--registry-mirror ${shellWord(`${e.registry}=${e.url}`)}`);
  if (o.insecureSkipVerify) flags.push(`--registry-insecure-skip-verify ${shellWord(plan.endpointHost)}`);
  return `${flags.join(' ')}\n`;
}
