import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { authorized, CHALLENGE, type BasicCredentials } from './auth.js';
import { RegistryProblem } from './errors.js';
import { handle, loggedPath, type Exchange, type ServeContext } from './handlers.js';
import { parseRoute } from './routes.js';

export interface AccessRecord {
  method: string;
  path: string;
  status: number;
  bytes: number;
  ms: number;
  remote: string;
  /** False when the response was cut short: the client left, or a damaged blob was refused mid-way. */
  complete: boolean;
}

export interface ServerOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
  auth?: BasicCredentials;
  /** Connections held open at once; more are refused until one closes. */
  maxConnections: number;
  onAccess: (r: AccessRecord) => void;
}

export interface RunningServer {
  address: AddressInfo;
  /** Stops accepting, lets responses under way finish for up to `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

/** A client must send its headers within this; slow-header clients are cut. */
const HEADERS_TIMEOUT_MS = 10_000;
/** A connection with nothing sent or received for this long is closed (a client that stopped reading). */
const IDLE_TIMEOUT_MS = 60_000;

export async function startServer(ctx: ServeContext, opts: ServerOptions): Promise<RunningServer> {
  const onRequest = (req: IncomingMessage, res: ServerResponse) => void answer(req, res, ctx, opts);
  // Node enforces headersTimeout only when it sweeps its connections (every 30 s by default).
  const sweep = { connectionsCheckingInterval: 1000 };
  const server: Server = opts.tls
    ? createHttpsServer({ ...opts.tls, ...sweep }, onRequest)
    : createHttpServer(sweep, onRequest);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = 2 * HEADERS_TIMEOUT_MS;
  server.maxConnections = opts.maxConnections;
  server.setTimeout(IDLE_TIMEOUT_MS, (socket: Socket) => socket.destroy());
  const inFlight = new Set<ServerResponse>();
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
  });
  server.on('clientError', (_err, socket: Socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return { address: server.address() as AddressInfo, close: (graceMs) => closeServer(server, inFlight, graceMs) };
}

async function closeServer(server: Server, inFlight: Set<ServerResponse>, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const deadline = Date.now() + graceMs;
  while (inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  server.closeAllConnections();
  // Cut responses log their line on 'close', a tick later: wait for them so none is lost.
  while (inFlight.size > 0) await new Promise((r) => setImmediate(r));
  await closed;
}

async function answer(req: IncomingMessage, res: ServerResponse, ctx: ServeContext, opts: ServerOptions) {
  const started = performance.now();
  const x: Exchange = { req, res, sent: { bytes: 0 } };
  res.on('close', () =>
    opts.onAccess({
      method: loggedPath(req.method).slice(0, 16),
      path: loggedPath(req.url),
      status: res.statusCode,
      bytes: x.sent.bytes,
      ms: Math.round(performance.now() - started),
      remote: req.socket.remoteAddress ?? '',
      complete: res.writableFinished,
    }),
  );
  res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
  try {
    if (opts.auth && !authorized(req.headers.authorization, opts.auth)) {
      res.setHeader('WWW-Authenticate', CHALLENGE);
      throw new RegistryProblem('UNAUTHORIZED', 'authentication required');
    }
    await handle(parseRoute(req.url ?? ''), x, ctx);
  } catch (err) {
    failed(x, ctx, err);
  }
}

function failed(x: Exchange, ctx: ServeContext, err: unknown): void {
  if (x.res.headersSent) {
    x.res.destroy();
    if (!(err instanceof RegistryProblem)) ctx.warn(`${loggedPath(x.req.url)}: cut short: ${(err as Error).message}`);
    return;
  }
  const problem =
    err instanceof RegistryProblem ? err : new RegistryProblem('BLOB_UNKNOWN', 'the bundle could not be read');
  if (!(err instanceof RegistryProblem)) {
    x.res.statusCode = 500;
    ctx.warn(`${loggedPath(x.req.url)}: the bundle could not be read: ${(err as Error).message}`);
  } else x.res.statusCode = problem.status;
  const body = Buffer.from(problem.body());
  x.res.setHeader('Content-Type', 'application/json');
  x.res.setHeader('Content-Length', String(body.length));
  if (x.req.method === 'HEAD') return void x.res.end();
  x.sent.bytes += body.length;
  x.res.end(body);
}
