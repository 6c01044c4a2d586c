// A hostile upstream in front of a REAL Distribution registry: everything is forwarded to it,
// except what a test chooses to rewrite or inject for chosen paths (a Link to another origin, a
// redirect, a trickled body, a crafted manifest, a huge or malformed listing). A second listener
// stands for "another host" that a hostile registry points the client to. Both record every
// request with its Authorization header, so a test can see exactly where credentials went.
// Loopback only; every timer and socket it starts, stop() ends.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { forward, upstreamOf } from './forward.js';
import { listenLoopback, stopper } from './loopback-server.js';

export interface HostileRequest {
  /** 'registry' is the proxy in front of the real registry; 'other' is the second listener. */
  listener: 'registry' | 'other';
  scheme: 'http' | 'https';
  method: string;
  path: string;
  authorization: string | undefined;
  /** The rule applied, if any; 'document' for a crafted manifest. */
  action?: HostileAction['kind'] | 'document';
}

export type HostileAction =
  | { kind: 'link-next'; to: (path: string) => string } // forward, and announce a next page at `to`
  | { kind: 'redirect'; status?: number; location: (path: string) => string } // answer a redirect instead of forwarding
  | { kind: 'trickle'; bytes: number; everyMs: number } // forward the headers, then the body `bytes` at a time every `everyMs`
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: Buffer | string } // answer without forwarding
  | { kind: 'realm'; realm: (original: string) => string } // forward, with the realm of the auth challenge replaced
  | { kind: 'location'; to: (location: string) => string }; // forward, with the Location header replaced (upload sessions)

export interface HostileRule {
  match: (method: string, path: string) => boolean;
  action: HostileAction;
  times?: number; // default Infinity
}

/** A manifest the proxy serves itself, by digest (and by tag when given), with a matching digest header. */
export interface CraftedManifest {
  digest: string;
  size: number;
  mediaType: string;
}

export interface HostileRegistry {
  /** The proxy: `https://…` when started with TLS, where plain http is answered on the same port too. */
  url: string;
  host: string;
  /** Another origin: records, answers `/token` with a token, and anything else with a 401 luring credentials to that realm. */
  other: { url: string; host: string };
  requests: HostileRequest[];
  rules: HostileRule[]; // mutable while running
  /** Serves `bytes` at `/v2/REPO/manifests/DIGEST` (and `:TAG`); `make` lets a large document be rebuilt per request instead of held. */
  serveManifest(
    repository: string,
    mediaType: string,
    content: Buffer | { size: number; digest: string; make: () => Buffer },
    tag?: string,
  ): CraftedManifest;
  stop(): Promise<void>;
}

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Bounds what a trickled body may cost the test process, whatever the rule says. */
const MAX_TRICKLE_TICKS = 100_000;

/**
 * Starts the proxy to `targetUrl` (an http:// Distribution registry) and the other listener.
 * With `tls`, the proxy speaks https, and plain http on the same port (to catch a client
 * that follows an https → http redirect to the same host and port).
 */
export async function startHostileRegistry(
  targetUrl: string,
  opts: { tls?: { certFile: string; keyFile: string } } = {},
): Promise<HostileRegistry> {
  const upstream = upstreamOf('hostile registry', targetUrl);
  if (upstream.target.hostname !== '127.0.0.1')
    throw new Error(`hostile registry forwards to http://127.0.0.1 targets only, got ${targetUrl}`);
  const requests: HostileRequest[] = [];
  const rules: HostileRule[] = [];
  const used = new WeakMap<HostileRule, number>();
  const documents = new Map<string, { mediaType: string; digest: string; size: number; make: () => Buffer }>();
  const timers = new Set<NodeJS.Timeout>();
  let otherOrigin = '';

  const pick = (method: string, path: string): HostileAction | undefined => {
    const rule = rules.find((r) => (used.get(r) ?? 0) < (r.times ?? Infinity) && r.match(method, path));
    if (!rule) return undefined;
    used.set(rule, (used.get(rule) ?? 0) + 1);
    return rule.action;
  };

  const send = (req: http.IncomingMessage, res: http.ServerResponse, action: HostileAction | undefined) =>
    forward(upstream, req, res, {
      rewrite: (headers) => {
        if (action?.kind === 'location' && typeof headers.location === 'string')
          headers.location = action.to(headers.location);
        if (action?.kind === 'link-next') headers.link = `<${action.to(req.url ?? '/')}>; rel="next"`;
        if (action?.kind === 'realm' && typeof headers['www-authenticate'] === 'string') {
          headers['www-authenticate'] = headers['www-authenticate'].replace(
            /realm="([^"]*)"/,
            (_m, r: string) => `realm="${action.realm(r)}"`,
          );
        }
      },
      respond:
        action?.kind === 'trickle'
          ? (up, headers) => {
              res.writeHead(up.statusCode ?? 502, headers);
              trickle(up, res, action);
            }
          : undefined,
    });

  /** Reads the whole upstream body, then hands it out a few bytes per tick until done or the client leaves. */
  const trickle = (
    up: http.IncomingMessage,
    res: http.ServerResponse,
    action: Extract<HostileAction, { kind: 'trickle' }>,
  ) => {
    const chunks: Buffer[] = [];
    up.on('data', (c: Buffer) => chunks.push(c));
    up.on('end', () => {
      const body = Buffer.concat(chunks);
      let at = 0;
      let ticks = 0;
      const tick = () => {
        if (res.destroyed || at >= body.length || ++ticks > MAX_TRICKLE_TICKS) return void res.end();
        res.write(body.subarray(at, at + action.bytes));
        at += action.bytes;
        const t = setTimeout(() => {
          timers.delete(t);
          tick();
        }, action.everyMs);
        timers.add(t);
      };
      tick();
    });
  };

  const handler =
    (listener: HostileRequest['listener'], scheme: HostileRequest['scheme']) =>
    (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      const record: HostileRequest = { listener, scheme, method, path, authorization: req.headers.authorization };
      requests.push(record);
      if (listener === 'other') return answerAsOther(req, res, path);
      const action = pick(method, path);
      if (action) record.action = action.kind;
      if (action?.kind === 'respond') {
        req.resume();
        res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
        return void res.end(method === 'HEAD' ? undefined : action.body);
      }
      if (action?.kind === 'redirect') {
        req.resume();
        res.writeHead(action.status ?? 307, { location: action.location(path), 'content-length': '0' });
        return void res.end();
      }
      const doc = (method === 'GET' || method === 'HEAD') && !action ? documents.get(path.split('?')[0]!) : undefined;
      if (doc) {
        record.action = 'document';
        req.resume();
        res.writeHead(200, {
          'content-type': doc.mediaType,
          'content-length': String(doc.size),
          'docker-content-digest': doc.digest,
        });
        return void res.end(method === 'HEAD' ? undefined : doc.make());
      }
      send(req, res, action);
    };

  /** The other host lures credentials: a 401 naming its own realm, and a token for whoever asks there. */
  const answerAsOther = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => {
    req.resume();
    if (path.startsWith('/token')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ token: 'token-from-another-host', expires_in: 300 }));
    }
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': `Bearer realm="${otherOrigin}/token",service="other"`,
    });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'another host' }] }));
  };

  const plain = http.createServer(handler('registry', 'http'));
  const secure = opts.tls
    ? https.createServer(
        { cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) },
        handler('registry', 'https'),
      )
    : undefined;
  // One port, both protocols: a TLS handshake starts with byte 0x16, plain HTTP with a method name.
  const front = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      (first[0] === 0x16 && secure ? secure : plain).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  const otherServer = http.createServer(handler('other', 'http'));
  const sockets = new Set<net.Socket>();
  front.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  const host = await listen(front);
  const otherHost = await listenLoopback(otherServer);
  const stopOther = stopper(otherServer);
  const origin = `${opts.tls ? 'https' : 'http'}://${host}`;
  upstream.origin = origin;
  otherOrigin = `http://${otherHost}`;

  let stopped: Promise<void> | undefined;
  return {
    url: origin,
    host,
    other: { url: otherOrigin, host: otherHost },
    requests,
    rules,
    serveManifest(repository, mediaType, content, tag) {
      const entry = Buffer.isBuffer(content)
        ? { mediaType, digest: sha256(content), size: content.length, make: () => content }
        : { mediaType, ...content };
      documents.set(`/v2/${repository}/manifests/${entry.digest}`, entry);
      if (tag !== undefined) documents.set(`/v2/${repository}/manifests/${tag}`, entry);
      return { digest: entry.digest, size: entry.size, mediaType };
    },
    stop() {
      stopped ??= (async () => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        for (const s of sockets) s.destroy();
        plain.closeAllConnections();
        secure?.closeAllConnections();
        await Promise.all([close(front), stopOther()]);
      })();
      return stopped;
    },
  };
}

function listen(server: net.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
