// A loopback proxy in front of a real Distribution registry that behaves like registries which are
// not Distribution (GitLab, GHCR, ECR, Harbor, caching proxies, CDN-backed uploads): everything it
// does not change is the real registry's answer.
import http from 'node:http';
import { forward, upstreamOf } from './forward.js';
import { listenLoopback, stopper } from './loopback-server.js';

export interface Quirks {
  /** `/v2/_catalog` answers this status with an `UNSUPPORTED` error. */
  noCatalog?: 401 | 404 | 405;
  /** `_catalog?n=` above this answers 400 `PAGINATION_NUMBER_INVALID`. */
  catalogMaxEntries?: number;
  /** Cross-repository mounts are ignored: the registry opens an upload session (202). */
  noMount?: boolean;
  /** No `Docker-Content-Digest` on manifest responses. */
  stripDigest?: boolean;
  /** The next `count` HEAD requests answer 429 with `Retry-After` cycling through `retryAfter`. */
  headBurst?: { count: number; retryAfter: number[] };
  /** Pushes to repositories outside these projects (first path component) are refused. */
  projects?: { exist: string[]; style: 'name-unknown' | 'project-403' };
  /** How upload `Location` headers are handed out. */
  location?: 'relative' | 'absolute' | 'query' | 'other-host';
  /** PUT or PATCH bodies above this many bytes answer 413. */
  maxBody?: number;
  /** Manifests with `subject` or `artifactType` (OCI 1.1 artifacts) answer 400 `MANIFEST_INVALID`, as older registries do. */
  noArtifactManifests?: boolean;
}

export interface ProxyRequest {
  method: string;
  path: string;
  status: number;
  /** Which listener: the registry's address, or the other host of `location: 'other-host'`. */
  host: 'main' | 'other';
  authorization: boolean;
  contentLength: number | undefined;
}

export interface QuirkProxy {
  url: string;
  host: string;
  /** The address of the other host uploads are sent to with `location: 'other-host'`. */
  otherHost: string;
  quirks: Quirks; // mutable while running
  requests: ProxyRequest[];
  stop(): Promise<void>;
}

const SESSION_PATH = '/upload-session';

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] });
}

/**
 * Plain-HTTP proxy to `targetUrl`. `upstreamAuthorization` is what the other host presents to the
 * registry on its own (its URLs carry their authority, as signed upload URLs do): the client must
 * never send it credentials.
 */
export async function startQuirkProxy(
  targetUrl: string,
  quirks: Quirks = {},
  upstreamAuthorization?: string,
): Promise<QuirkProxy> {
  const upstream = upstreamOf('quirk proxy', targetUrl);
  const { target } = upstream;
  const requests: ProxyRequest[] = [];
  let otherOrigin = '';
  let burstLeft = quirks.headBurst?.count ?? 0;
  let burstIndex = 0;

  const answer = (res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };

  /** A quirk that answers on its own, or undefined to forward. */
  const intercept = (req: http.IncomingMessage, url: URL, res: http.ServerResponse): number | undefined => {
    const q = proxy.quirks;
    const method = req.method ?? 'GET';
    if (url.pathname === '/v2/_catalog') {
      if (q.noCatalog)
        return (answer(res, q.noCatalog, errorBody('UNSUPPORTED', 'the catalog is not offered')), q.noCatalog);
      const n = Number(url.searchParams.get('n') ?? '100');
      if (q.catalogMaxEntries !== undefined && n > q.catalogMaxEntries)
        return (answer(res, 400, errorBody('PAGINATION_NUMBER_INVALID', 'invalid number of results requested')), 400);
    }
    if (method === 'HEAD' && proxy.quirks.headBurst && burstLeft > 0) {
      burstLeft--;
      const after = proxy.quirks.headBurst.retryAfter[burstIndex++ % proxy.quirks.headBurst.retryAfter.length]!;
      res.writeHead(429, { 'retry-after': String(after) });
      res.end();
      return 429;
    }
    const push = /^\/v2\/(.+)\/(blobs\/uploads|manifests)\b/.exec(url.pathname);
    if (
      q.projects &&
      push &&
      method !== 'GET' &&
      method !== 'HEAD' &&
      !q.projects.exist.includes(push[1]!.split('/')[0]!)
    ) {
      if (q.projects.style === 'name-unknown')
        return (answer(res, 404, errorBody('NAME_UNKNOWN', 'repository name not known to registry')), 404);
      return (answer(res, 403, errorBody('DENIED', `project ${push[1]!.split('/')[0]} not found`)), 403);
    }
    const length = Number(req.headers['content-length'] ?? '0');
    if (q.maxBody !== undefined && (method === 'PUT' || method === 'PATCH') && length > q.maxBody)
      return (answer(res, 413, errorBody('SIZE_INVALID', `request body larger than ${q.maxBody} bytes`)), 413);
    return undefined;
  };

  /** Where the registry's upload Location is sent, per the `location` quirk. */
  const rewriteLocation = (location: string): string => {
    const abs = new URL(location, target);
    if (abs.origin !== target.origin) return location;
    const pathAndQuery = `${abs.pathname}${abs.search}`;
    switch (proxy.quirks.location) {
      case 'relative':
        return pathAndQuery;
      case 'query':
        return `${SESSION_PATH}?session=${encodeURIComponent(pathAndQuery)}&shard=7`;
      case 'other-host':
        return `${otherOrigin}${pathAndQuery}`;
      default:
        return `${upstream.origin}${pathAndQuery}`;
    }
  };

  const handler = (which: 'main' | 'other') => (req: http.IncomingMessage, res: http.ServerResponse) => {
    const method = req.method ?? 'GET';
    let url = new URL(req.url ?? '/', target);
    const log = (status: number) =>
      requests.push({
        method,
        path: req.url ?? '/',
        status,
        host: which,
        authorization: req.headers.authorization !== undefined,
        contentLength: req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined,
      });
    if (url.pathname === SESSION_PATH) {
      // The state travels in the query; the client's own parameters (digest) come after it.
      const session = new URL(url.searchParams.get('session') ?? '/', target);
      for (const [k, v] of url.searchParams) if (k !== 'session' && k !== 'shard') session.searchParams.append(k, v);
      url = session;
    }
    const intercepted = intercept(req, url, res);
    if (intercepted !== undefined) {
      log(intercepted);
      req.resume();
      return;
    }
    if (proxy.quirks.noMount && method === 'POST' && url.searchParams.has('mount')) {
      url.searchParams.delete('mount');
      url.searchParams.delete('from');
    }
    if (proxy.quirks.noArtifactManifests && method === 'PUT' && url.pathname.includes('/manifests/')) {
      refuseArtifacts(req, res, url, log);
      return;
    }
    const headers = { ...req.headers, host: target.host };
    if (which === 'other') {
      delete headers.authorization;
      if (upstreamAuthorization) headers.authorization = upstreamAuthorization;
    }
    forward(upstream, req, res, {
      path: `${url.pathname}${url.search}`,
      headers,
      relocate: rewriteLocation,
      rewrite: (out) => {
        if (proxy.quirks.stripDigest && url.pathname.includes('/manifests/')) delete out['docker-content-digest'];
      },
      onStatus: log,
    });
  };

  /** Reads the manifest: an OCI 1.1 artifact is refused; anything else is forwarded with the same bytes. */
  const refuseArtifacts = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, log: (s: number) => void) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const doc = JSON.parse(body.toString('utf8')) as { subject?: unknown; artifactType?: unknown };
      if (doc.subject !== undefined || doc.artifactType !== undefined) {
        log(400);
        answer(res, 400, errorBody('MANIFEST_INVALID', 'manifest invalid: unknown field subject'));
        return;
      }
      forward(upstream, req, res, {
        path: `${url.pathname}${url.search}`,
        body,
        relocate: rewriteLocation,
        onStatus: log,
      });
    });
  };

  const server = http.createServer(handler('main'));
  const other = http.createServer(handler('other'));
  const host = await listenLoopback(server);
  const otherHost = await listenLoopback(other);
  upstream.origin = `http://${host}`;
  otherOrigin = `http://${otherHost}`;
  const stopMain = stopper(server);
  const stopOther = stopper(other);
  const proxy: QuirkProxy = {
    url: upstream.origin,
    host,
    otherHost,
    quirks,
    requests,
    stop: async () => {
      await stopMain();
      await stopOther();
    },
  };
  return proxy;
}
