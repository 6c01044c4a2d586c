/**
 * The client-side mirror layout matching how `import` named repositories.
 * Host stripped: one `'*'` mirror serves every source registry. Host kept (or a
 * prefix): each registry's images live under their own path, so each registry
 * gets a mirror whose endpoint path points there (`overridePath`, the path then
 * carries `/v2`).
 */
export interface MirrorOptions {
  /** What the NODES use to reach the registry, with scheme: `http://10.5.0.1:6000`. */
  endpoint: string;
  /** Source registries of the bundle's images (needed for per-registry mirrors). */
  registries: string[];
  keepRegistryHost: boolean;
  repoPrefix?: string;
  skipFallback: boolean;
  /** PEM of the CA that signed the registry's certificate. */
  caPem?: string;
  insecureSkipVerify: boolean;
  auth?: { username: string; password: string };
}

export interface MirrorEntry {
  /** Source registry host, or `*`. */
  registry: string;
  url: string;
  overridePath: boolean;
}

export interface MirrorPlan {
  entries: MirrorEntry[];
  /** host:port of the endpoint: the key of auth and TLS settings. */
  endpointHost: string;
  options: MirrorOptions;
}

export class MirrorConfigError extends Error {
  override name = 'MirrorConfigError';
}

export function planMirrors(opts: MirrorOptions): MirrorPlan {
  const base = opts.endpoint.replace(/\/+$/, '');
  const prefix = opts.repoPrefix ? opts.repoPrefix.replace(/^\/+|\/+$/g, '') : '';
  let entries: MirrorEntry[];
  if (!opts.keepRegistryHost) {
    entries = [{ registry: '*', url: prefix ? `${base}/v2/${prefix}` : base, overridePath: prefix !== '' }];
  } else {
    if (opts.registries.length === 0) throw new MirrorConfigError('with --keep-registry-host each source registry needs its own mirror: pass --bundle (or --source-registry) to name them');
    entries = [...new Set(opts.registries)].sort().map((reg) => ({
      registry: reg,
      url: `${base}/v2/${[prefix, reg.replace(/:/g, '_')].filter(Boolean).join('/')}`,
      overridePath: true,
    }));
  }
  return { entries, endpointHost: new URL(base).host, options: opts };
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\]|::1)$/i;

/**
 * The mistakes that break air-gapped clusters most often, caught before the
 * config reaches a node. Errors refuse; warnings are printed.
 */
export function checkMirrorOptions(opts: MirrorOptions, repositories: Array<{ registry: string; repository: string }>): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  let url: URL | undefined;
  if (!/^https?:\/\//i.test(opts.endpoint)) {
    errors.push(`--endpoint "${opts.endpoint}" has no scheme: write http://${opts.endpoint} or https://${opts.endpoint} (nodes fail with "missing protocol scheme" otherwise)`);
  } else {
    try {
      url = new URL(opts.endpoint);
    } catch {
      errors.push(`--endpoint "${opts.endpoint}" is not a URL`);
    }
  }
  if (url && LOOPBACK.test(url.hostname)) {
    warnings.push(`--endpoint ${opts.endpoint} is a loopback address: on a node it is the node itself, not the registry; use the address the nodes reach the registry at`);
  }
  if (url?.protocol === 'http:' && (opts.caPem || opts.insecureSkipVerify)) {
    errors.push('TLS options (--ca-file, --insecure-skip-tls-verify) given for an http:// endpoint: drop them, or use https:// (Talos refuses "TLS config specified for non-HTTPS registry")');
  }
  if (!opts.keepRegistryHost) {
    const byPath = new Map<string, Set<string>>();
    for (const r of repositories) byPath.set(r.repository, (byPath.get(r.repository) ?? new Set()).add(r.registry));
    const clashes = [...byPath].filter(([, regs]) => regs.size > 1).map(([repo, regs]) => `${repo} (${[...regs].sort().join(', ')})`);
    if (clashes.length > 0) {
      errors.push(`one '*' mirror cannot serve the same repository path from two registries: ${clashes.join('; ')}; import with --keep-registry-host and generate per-registry mirrors with --keep-registry-host`);
    }
  }
  return { errors, warnings };
}
