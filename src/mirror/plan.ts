import {
  CARRIED_REGISTRY,
  isRegistryHost,
  mappingProblem,
  mirrorPath,
  type RepositoryMapping,
} from '../reference/mapping.js';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';

/**
 * The client-side mirror layout matching how `import` named repositories.
 * Host stripped: one `'*'` mirror serves every source registry. Host kept (or a
 * prefix): each registry's images live under their own path, so each registry
 * gets a mirror whose endpoint path points there (`overridePath`, the path then
 * carries `/v2`).
 */
export interface MirrorOptions extends RepositoryMapping {
  /** What the NODES use to reach the registry, with scheme: `http://10.5.0.1:6000`. */
  endpoint: string;
  /** Source registries of the bundle's images (needed for per-registry mirrors). */
  registries: string[];
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
  // Charts and files are pulled from the isolated registry by name, never through a mirror.
  const sources = opts.registries.filter((r) => r !== CARRIED_REGISTRY);
  if (opts.keepRegistryHost && sources.length === 0)
    throw new MirrorConfigError(
      'with --keep-registry-host each source registry needs its own mirror: pass --bundle (or --source-registry) to name them',
    );
  const registries = opts.keepRegistryHost ? [...new Set(sources)].sort() : ['*'];
  const entries = registries.map((registry) => mirrorEntry(base, registry, opts));
  return { entries, endpointHost: new URL(base).host, options: opts };
}

/**
 * The mirror of one registry (or `'*'`): the endpoint itself when the images
 * are at the registry's root, else the endpoint with the mapping's path, which
 * the node must then take as it is (`overridePath`, the path carries `/v2`).
 */
function mirrorEntry(base: string, registry: string, mapping: RepositoryMapping): MirrorEntry {
  const path = mirrorPath(registry, mapping);
  return { registry, url: path === '' ? base : `${base}/v2/${path}`, overridePath: path !== '' };
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
  const mapping = mappingProblem(opts);
  if (mapping !== undefined) errors.push(mapping);
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
