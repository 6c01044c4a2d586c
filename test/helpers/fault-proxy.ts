// An HTTP proxy in front of a test registry that injects faults into chosen requests, so retry,
// resume and verification paths are exercised against real server behaviour everywhere else.
import http from 'node:http';
import { forward, upstreamOf } from './forward.js';
import { listenLoopback, stopper } from './loopback-server.js';

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: number; headers?: Record<string, string> } // answer this status instead of forwarding
  | { kind: 'corrupt' } // forward, but flip one byte in the body (same length)
  | { kind: 'truncate' } // send headers with the full Content-Length, half the body, then end the socket
  | { kind: 'reset' } // destroy the socket mid-body
  | { kind: 'stall' }; // send headers, then nothing until stop()

export interface FaultRule {
  match: (method: string, path: string) => boolean;
  fault: Fault;
  times?: number; // default Infinity
}

export interface FaultProxy {
  url: string;
  host: string;
  requests: Array<{ method: string; path: string; status: number; faulted: boolean }>;
  rules: FaultRule[]; // mutable while running
  stop(): Promise<void>;
}

/** Plain-HTTP proxy to `targetUrl` (an http:// registry), applying the first matching rule that has uses left. */
export async function startFaultProxy(targetUrl: string, rules: FaultRule[] = []): Promise<FaultProxy> {
  const upstream = upstreamOf('fault proxy', targetUrl);
  const used = new WeakMap<FaultRule, number>();
  const requests: FaultProxy['requests'] = [];

  // A HEAD response has no body to damage, so body faults skip it rather than spend one of their uses.
  const applies = (r: FaultRule, method: string) =>
    method !== 'HEAD' || r.fault.kind === 'status' || r.fault.kind === 'stall';
  const pickRule = (method: string, path: string): FaultRule | undefined => {
    const rule = proxy.rules.find(
      (r) => (used.get(r) ?? 0) < (r.times ?? Infinity) && applies(r, method) && r.match(method, path),
    );
    if (rule) used.set(rule, (used.get(rule) ?? 0) + 1);
    return rule;
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const fault = pickRule(method, path)?.fault;
    const log = (status: number, faulted: boolean) => requests.push({ method, path, status, faulted });

    if (fault?.kind === 'status') {
      const headers: Record<string, string> = { 'Content-Type': 'application/json', ...fault.headers };
      if (fault.retryAfter !== undefined) headers['Retry-After'] = String(fault.retryAfter);
      log(fault.status, true);
      req.resume();
      res.writeHead(fault.status, headers);
      // Registry-style error body, so clients that parse errors see a well-formed one.
      res.end(
        method === 'HEAD'
          ? undefined
          : JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${fault.status}` }] }),
      );
      return;
    }

    if (!fault) return forward(upstream, req, res, { onStatus: (status) => log(status, false) });
    forward(upstream, req, res, {
      respond: (up, headers) => {
        const status = up.statusCode ?? 502;
        if (fault.kind === 'stall') {
          log(status, true);
          up.resume();
          res.writeHead(status, headers);
          res.flushHeaders();
          return; // never ends: closed by stop()
        }
        // The remaining faults need the whole body to pick the byte or the cut point.
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const body = Buffer.concat(chunks);
          log(status, body.length > 0);
          delete headers['transfer-encoding'];
          headers['content-length'] = String(body.length);
          res.writeHead(status, headers);
          if (body.length === 0) return void res.end();
          const half = body.subarray(0, Math.floor(body.length / 2));
          if (fault.kind === 'corrupt') {
            const i = Math.floor(body.length / 2);
            body[i] = body[i]! ^ 0xff;
            res.end(body);
          } else if (fault.kind === 'truncate') {
            // A clean FIN after a short body: the client sees fewer bytes than Content-Length.
            res.write(half, () => res.socket?.end());
          } else {
            // An RST mid-body: the client sees a connection reset, not a clean close.
            res.write(half, () => res.socket?.resetAndDestroy());
          }
        });
      },
      onUpstreamError: () => log(502, false),
    });
  });

  const host = await listenLoopback(server);
  upstream.origin = `http://${host}`;
  const proxy: FaultProxy = {
    url: upstream.origin,
    host,
    requests,
    rules,
    stop: stopper(server),
  };
  return proxy;
}
