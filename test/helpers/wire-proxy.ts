// A forwarding HTTP proxy for faults the response-side fault proxy cannot make: damage to what the
// client SENDS (uploads cut or altered in transit), a server that never answers at all, slow but
// live links, redirects, and a record of every request's headers (to see what a client disclosed).
import http from 'node:http';
import { pipeline, Readable } from 'node:stream';
import { forward, upstreamOf } from './forward.js';
import { listenLoopback, stopper } from './loopback-server.js';

export interface SeenRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The action applied, if a rule matched. */
  action?: WireAction['kind'];
  /** Status answered to the client (undefined while pending, or when the connection was cut). */
  status?: number;
}

export type WireAction =
  | { kind: 'hang' } // read the request, then never answer (not even a status line) until stop()
  | { kind: 'reset-upload' } // read about half of the request body, then RST the connection; nothing reaches upstream
  | { kind: 'corrupt-upload' } // forward the request with one body byte flipped: same length, wrong bytes
  | { kind: 'throttle'; bytesPerSecond: number } // forward, pacing the request and response bodies (never idle long)
  | { kind: 'delay'; ms: number | (() => number) } // wait (decided when the request arrives), then forward normally
  | { kind: 'redirect'; status: number; location: (path: string) => string } // answer a redirect instead of forwarding
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }; // answer without forwarding

export interface WireRule {
  match: (req: SeenRequest) => boolean;
  action: WireAction;
  times?: number; // default Infinity
}

export interface WireProxy {
  url: string;
  host: string;
  seen: SeenRequest[];
  rules: WireRule[]; // mutable while running
  stop(): Promise<void>;
}

const TICK_MS = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Re-chunks a stream into slices of `bytesPerSecond / 20`, one slice every 50 ms. */
async function* paced(source: AsyncIterable<Buffer>, bytesPerSecond: number): AsyncGenerator<Buffer> {
  const slice = Math.max(1, Math.floor((bytesPerSecond * TICK_MS) / 1000));
  for await (const chunk of source) {
    for (let i = 0; i < chunk.length; i += slice) {
      yield chunk.subarray(i, i + slice);
      await sleep(TICK_MS);
    }
  }
}

async function readAll(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

/** Plain-HTTP proxy to `targetUrl`; the first matching rule with uses left decides what happens. */
export async function startWireProxy(targetUrl: string, rules: WireRule[] = []): Promise<WireProxy> {
  const upstream = upstreamOf('wire proxy', targetUrl);
  const used = new WeakMap<WireRule, number>();
  const seen: SeenRequest[] = [];

  const pick = (r: SeenRequest): WireAction | undefined => {
    const rule = proxy.rules.find((x) => (used.get(x) ?? 0) < (x.times ?? Infinity) && x.match(r));
    if (!rule) return undefined;
    used.set(rule, (used.get(rule) ?? 0) + 1);
    return rule.action;
  };

  const send = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: SeenRequest,
    body: Readable | Buffer,
    pace?: number,
  ) =>
    forward(upstream, req, res, {
      body,
      // A client that gives up mid-transfer is part of the scenarios: errors end the exchange quietly.
      streams: 'pipeline',
      onStatus: (status) => (record.status = status),
      respond: pace
        ? (up, headers) => {
            res.writeHead(up.statusCode ?? 502, headers);
            pipeline(Readable.from(paced(up, pace)), res, () => undefined);
          }
        : undefined,
    });

  const server = http.createServer((req, res) => {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const record: SeenRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } };
    seen.push(record);
    const action = pick(record);
    if (action) record.action = action.kind;
    switch (action?.kind) {
      case undefined:
        return send(req, res, record, req);
      case 'hang':
        req.resume();
        return; // closed by stop()
      case 'respond':
        req.resume();
        record.status = action.status;
        res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
        return void res.end(req.method === 'HEAD' ? undefined : (action.body ?? ''));
      case 'redirect':
        req.resume();
        record.status = action.status;
        res.writeHead(action.status, { location: action.location(record.path), 'content-length': '0' });
        return void res.end();
      case 'delay':
        return void sleep(typeof action.ms === 'function' ? action.ms() : action.ms).then(() =>
          send(req, res, record, req),
        );
      case 'throttle':
        return send(req, res, record, Readable.from(paced(req, action.bytesPerSecond)), action.bytesPerSecond);
      case 'corrupt-upload':
        return void readAll(req).then(
          (body) => {
            if (body.length > 0) body[Math.floor(body.length / 2)]! ^= 0xff;
            send(req, res, record, body);
          },
          () => undefined,
        );
      case 'reset-upload': {
        const declared = Number(req.headers['content-length'] ?? 0);
        let got = 0;
        req.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= declared / 2) req.socket.resetAndDestroy();
        });
        req.on('end', () => req.socket.resetAndDestroy());
        return;
      }
    }
  });

  const host = await listenLoopback(server);
  upstream.origin = `http://${host}`;
  const proxy: WireProxy = {
    url: upstream.origin,
    host,
    seen,
    rules,
    stop: stopper(server),
  };
  return proxy;
}
