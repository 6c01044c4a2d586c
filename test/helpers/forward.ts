// The forward-and-rewrite core of the test proxies (fault, quirk, wire, hostile registry): a request
// goes to the real registry behind the proxy, and its answer comes back with the registry's own
// absolute upload URLs turned into the proxy's, so a client stays on the proxy. What each proxy
// changes on top (faults, quirks, pacing, hostile headers) it passes in as options.
import http from 'node:http';
import { pipeline, type Readable } from 'node:stream';

export interface Upstream {
  /** Names the proxy in its error answers. */
  readonly name: string;
  readonly target: URL;
  /** The proxy's own origin (`http://127.0.0.1:PORT`), set once it listens. */
  origin: string;
}

/** The registry a proxy forwards to: plain http only (the proxies do not speak TLS upstream). */
export function upstreamOf(name: string, targetUrl: string): Upstream {
  const target = new URL(targetUrl);
  if (target.protocol !== 'http:') throw new Error(`${name} forwards to http:// targets only, got ${targetUrl}`);
  return { name, target, origin: '' };
}

/** An absolute URL of the target, rewritten onto the proxy; anything else as it is. */
export function onProxy(upstream: Upstream, location: string): string {
  const { target, origin } = upstream;
  return location.startsWith(target.origin) ? origin + location.slice(target.origin.length) : location;
}

export interface ForwardOptions {
  /** Path and query sent upstream; the client's by default. */
  path?: string;
  /** Request headers sent upstream; the client's (Host set to the target) by default. */
  headers?: http.OutgoingHttpHeaders;
  /** The request body: the client's stream by default; a Buffer is sent with its own Content-Length. */
  body?: Readable | Buffer;
  /** How the answer's Location header is rewritten; onProxy by default. */
  relocate?: (location: string) => string;
  /** Further changes to the answer's headers, after Location. */
  rewrite?: (headers: http.IncomingHttpHeaders, up: http.IncomingMessage) => void;
  /**
   * Sends the answer to the client; by default its status, the rewritten headers and the body
   * piped through. Whatever it does, it owns `res` from then on.
   */
  respond?: (up: http.IncomingMessage, headers: http.IncomingHttpHeaders, res: http.ServerResponse) => void;
  /** The status the client is answered with (502 when the registry cannot be reached). */
  onStatus?: (status: number) => void;
  /** The registry could not be reached (the client is answered 502). */
  onUpstreamError?: (err: Error) => void;
  /**
   * How bodies are streamed. 'pipe' (the default) leaves the other side open when one side fails;
   * 'pipeline' destroys both, so a client that gives up mid-transfer ends the upstream exchange too.
   */
  streams?: 'pipe' | 'pipeline';
}

/** Forwards one request to the registry and its answer back to the client. */
export function forward(
  upstream: Upstream,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  opts: ForwardOptions = {},
): void {
  const { target } = upstream;
  const headers: http.OutgoingHttpHeaders = opts.headers ?? { ...req.headers, host: target.host };
  const body = opts.body ?? req;
  if (Buffer.isBuffer(body)) {
    delete headers['transfer-encoding'];
    headers['content-length'] = String(body.length);
  }
  const request = http.request(
    { host: target.hostname, port: target.port, method: req.method, path: opts.path ?? req.url, headers },
    (up) => {
      const status = up.statusCode ?? 502;
      const out = { ...up.headers };
      if (typeof out.location === 'string')
        out.location = (opts.relocate ?? ((l: string) => onProxy(upstream, l)))(out.location);
      opts.rewrite?.(out, up);
      opts.onStatus?.(status);
      if (opts.respond) return opts.respond(up, out, res);
      res.writeHead(status, out);
      if (opts.streams === 'pipeline') pipeline(up, res, () => undefined);
      else up.pipe(res);
    },
  );
  request.on('error', (err) => {
    opts.onStatus?.(502);
    opts.onUpstreamError?.(err);
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`${upstream.name}: upstream error: ${err.message}`);
  });
  if (Buffer.isBuffer(body)) request.end(body);
  else if (opts.streams === 'pipeline') pipeline(body, request, () => undefined);
  else body.pipe(request);
}
