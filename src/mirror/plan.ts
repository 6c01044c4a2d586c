import { parseReference } from '../reference/reference.js';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';

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

export class MirrorConfigError extends UserInputError {
  override name = 'MirrorConfigError';
}

/** A DNS name (at most 253 characters) and a port. */
const MAX_HOST_LENGTH = 253 + ':65535'.length;

/**
 * Whether `name` is a registry host as a normalised reference names it
 * (`ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`, `localhost`), by the reference
 * grammar itself. Registry names become folder names, TOML and YAML keys and
 * URL path parts, and they come from the bundle: nothing else may pass.
 */
export function isRegistryHost(name: string): boolean {
  if (name.length === 0 || name.length > MAX_HOST_LENGTH) return false;
  try {
    // A host is what parseReference keeps as the registry of `HOST/x`, unchanged.
    return parseReference(`${name}/x`).registry === name;
  } catch {
    return false;
  }
}

/** Source registries that are not hosts, quoted for a message. */
export function invalidRegistries(registries: Iterable<string>): string[] {
  return [...new Set(registries)].filter((r) => !isRegistryHost(r)).map((r) => `"${printable(r, 80)}"`);
}

export function planMirrors(opts: MirrorOptions): MirrorPlan {
  const invalid = invalidRegistries(opts.registries);
  if (invalid.length > 0) {
    const named =
      invalid.length > 1
        ? `source registries ${invalid.slice(0, 5).join(', ')} are`
        : `source registry ${invalid[0]} is`;
    throw new MirrorConfigError(`${named} not a host[:port]; no mirror configuration is written for such names`);
  }
  const base = opts.endpoint.replace(/\/+$/, '');
  const prefix = opts.repoPrefix ? opts.repoPrefix.replace(/^\/+|\/+$/g, '') : '';
  let entries: MirrorEntry[];
  if (!opts.keepRegistryHost) {
    entries = [{ registry: '*', url: prefix ? `${base}/v2/${prefix}` : base, overridePath: prefix !== '' }];
  } else {
    if (opts.registries.length === 0)
      throw new MirrorConfigError(
        'with --keep-registry-host each source registry needs its own mirror: pass --bundle (or --source-registry) to name them',
      );
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
export function checkMirrorOptions(
  opts: MirrorOptions,
  repositories: Array<{ registry: string; repository: string }>,
): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const shownEndpoint = printable(opts.endpoint);
  let url: URL | undefined;
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(opts.endpoint)) {
    // The URL parser drops tabs and line breaks, but the text would still reach the files.
    errors.push(`--endpoint "${shownEndpoint}" holds whitespace or control characters: give the plain URL`);
  } else if (!/^https?:\/\//i.test(opts.endpoint)) {
    errors.push(
      `--endpoint "${shownEndpoint}" has no scheme: write http://${shownEndpoint} or https://${shownEndpoint} (nodes fail with "missing protocol scheme" otherwise)`,
    );
  } else {
    try {
      url = new URL(opts.endpoint);
    } catch {
      errors.push(`--endpoint "${shownEndpoint}" is not a URL`);
    }
  }
  if (opts.repoPrefix !== undefined && !isRepositoryPath(opts.repoPrefix.replace(/^\/+|\/+$/g, ''))) {
    errors.push(
      `--repo-prefix "${printable(opts.repoPrefix)}" is not a valid repository path (lowercase letters, digits, ".", "_", "-", "/")`,
    );
  }
  if (url && LOOPBACK.test(url.hostname)) {
    warnings.push(
      `--endpoint ${shownEndpoint} is a loopback address: on a node it is the node itself, not the registry; use the address the nodes reach the registry at`,
    );
  }
  if (url?.protocol === 'http:' && (opts.caPem || opts.insecureSkipVerify)) {
    errors.push(
      'TLS options (--ca-file, --insecure-skip-tls-verify) given for an http:// endpoint: drop them, or use https:// (Talos refuses "TLS config specified for non-HTTPS registry")',
    );
  }
  if (!opts.keepRegistryHost) {
    const byPath = new Map<string, Set<string>>();
    for (const r of repositories) byPath.set(r.repository, (byPath.get(r.repository) ?? new Set()).add(r.registry));
    const clashes = [...byPath]
      .filter(([, regs]) => regs.size > 1)
      .map(
        ([repo, regs]) =>
          `${printable(repo)} (${[...regs]
            .sort()
            .map((r) => printable(r))
            .join(', ')})`,
      );
    if (clashes.length > 0) {
      errors.push(
        `one '*' mirror cannot serve the same repository path from two registries: ${clashes.join('; ')}; import with --keep-registry-host and generate per-registry mirrors with --keep-registry-host`,
      );
    }
  }
  return { errors, warnings };
}

/** Repository path components as the reference grammar accepts them, joined by `/`. */
function isRepositoryPath(path: string): boolean {
  if (path === '' || /[:@]/.test(path)) return false;
  try {
    const ref = parseReference(`registry.invalid/${path}`);
    return ref.repository === path && ref.tag === 'latest';
  } catch {
    return false;
  }
}
