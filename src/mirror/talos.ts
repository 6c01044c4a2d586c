import yaml from 'js-yaml';

export interface MirrorInput {
  /** What the NODES use to reach the registry, with scheme: `http://10.5.0.1:6000`. */
  endpoint: string;
  /** Source registries of the bundle's images. */
  registries: string[];
  keepRegistryHost: boolean;
  repoPrefix?: string;
}

/**
 * A Talos machine-config patch (`machine.registries.mirrors`) matching how the
 * import named repositories: with hosts stripped, one `'*'` mirror serves every
 * source registry; otherwise each registry gets its own mirror whose path points
 * at its part of the registry (`overridePath`, since the path carries `/v2`).
 */
export function talosMirrorPatch(input: MirrorInput): string {
  const base = input.endpoint.replace(/\/+$/, '');
  const prefix = input.repoPrefix ? `/${input.repoPrefix.replace(/^\/+|\/+$/g, '')}` : '';
  const mirrors: Record<string, { endpoints: string[]; overridePath?: boolean; skipFallback: boolean }> = {};
  if (!input.keepRegistryHost && !prefix) {
    mirrors['*'] = { endpoints: [base], skipFallback: true };
  } else {
    for (const reg of [...new Set(input.registries)].sort()) {
      const host = input.keepRegistryHost ? `/${reg.replace(/:/g, '_')}` : '';
      mirrors[reg] = { endpoints: [`${base}/v2${prefix}${host}`], overridePath: true, skipFallback: true };
    }
  }
  return yaml.dump({ machine: { registries: { mirrors } } }, { lineWidth: 200, quotingType: "'" });
}
