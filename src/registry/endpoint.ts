import { DOCKER_HUB, DOCKER_HUB_API } from '../reference/reference.js';
import { UserInputError } from '../util/user-input.js';

/**
 * Where requests for one registry actually go. A mirror replaces the host and may
 * add a path prefix in front of the repository, as containerd's `overridePath`
 * mirrors do; the bundle still records the original reference.
 */
export interface Endpoint {
  /** `https://host:port` */
  baseUrl: string;
  /** host:port of baseUrl: the key for credentials and TLS settings. */
  host: string;
  /** Prepended to every repository path (`ghcr.io` in `http://m:5000/ghcr.io`). */
  pathPrefix: string;
}

export interface Mirror {
  /** Registry host it stands in for, or `*`. */
  registry: string;
  url: URL;
}

export class MirrorError extends UserInputError {
  override name = 'MirrorError';
}

/** `HOST=URL`, the form talosctl's `--registry-mirror` takes. */
export function parseMirror(text: string): Mirror {
  const eq = text.indexOf('=');
  if (eq <= 0)
    throw new MirrorError(
      `invalid --registry-mirror "${text}": expected HOST=URL, e.g. '*=http://127.0.0.1:5000' or 'ghcr.io=https://mirror.lan/ghcr.io'`,
    );
  const registry = text.slice(0, eq).trim().toLowerCase();
  const rawUrl = text.slice(eq + 1).trim();
  if (!/^https?:\/\//i.test(rawUrl)) {
    throw new MirrorError(`invalid --registry-mirror "${text}": the URL needs a scheme (http:// or https://)`);
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new MirrorError(`invalid --registry-mirror "${text}": "${rawUrl}" is not a URL`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new MirrorError(`invalid --registry-mirror "${text}": the URL may hold scheme, host, port and path only`);
  }
  return { registry: registry === DOCKER_HUB_API || registry === 'index.docker.io' ? DOCKER_HUB : registry, url };
}

/** Exact host first, then `*`, as containerd looks mirrors up. */
export function resolveEndpoint(registry: string, mirrors: readonly Mirror[], plainHttp: boolean): Endpoint {
  const mirror = mirrors.find((m) => m.registry === registry) ?? mirrors.find((m) => m.registry === '*');
  if (mirror) {
    let path = mirror.url.pathname.replace(/\/+$/, '').replace(/^\/+/, '');
    // A trailing /v2 in a mirror URL names the API root, not a repository prefix.
    path = path.replace(/(^|\/)v2$/, '');
    return { baseUrl: mirror.url.origin, host: mirror.url.host, pathPrefix: path };
  }
  const apiHost = registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
  return { baseUrl: `${plainHttp ? 'http' : 'https'}://${apiHost}`, host: apiHost, pathPrefix: '' };
}

export function endpointRepository(endpoint: Endpoint, repository: string): string {
  return endpoint.pathPrefix ? `${endpoint.pathPrefix}/${repository}` : repository;
}

/** Scheme, host and port of the endpoint: the only origin its credentials go to. */
export function endpointOrigin(endpoint: Endpoint): string {
  return new URL(endpoint.baseUrl).origin;
}
