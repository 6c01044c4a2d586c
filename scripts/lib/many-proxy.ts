/**
 * A counting HTTP proxy in front of a registry, for the benchmark's "requests per image": every
 * request is forwarded untouched (the client's Host header too, so the registry's Location
 * headers name the proxy) over kept-alive connections, and counted by method.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';

export interface CountingProxy {
  host: string;
  /** Requests since the last reset, by method, and in all. */
  counts(): { total: number; byMethod: Record<string, number> };
  reset(): void;
  stop(): Promise<void>;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const [targetHost, targetPort] = [target.split(':')[0]!, Number(target.split(':')[1])];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let byMethod: Record<string, number> = {};
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    byMethod[method] = (byMethod[method] ?? 0) + 1;
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const upstream = http.request(
      { host: targetHost, port: targetPort, method, path: req.url, headers: req.headers, agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        pipeline(up, res, () => undefined);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`counting proxy: ${err.message}`);
    });
    pipeline(req, upstream, () => undefined);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    counts: () => ({ total: Object.values(byMethod).reduce((s, n) => s + n, 0), byMethod: { ...byMethod } }),
    reset: () => {
      byMethod = {};
    },
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
