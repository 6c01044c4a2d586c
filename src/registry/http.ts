import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import fetch, { type Response } from 'node-fetch';
import { networkError, redactUrl, RegistryError } from './errors.js';
import { printable } from '../util/text.js';

export interface HttpOptions {
  /** Extra CA certificates (PEM files) trusted besides the system roots. */
  caFiles?: string[];
  insecureSkipTlsVerify?: boolean;
  /** Abort when no byte arrives for this long (headers or body). */
  idleTimeoutMs?: number;
  maxSockets?: number;
  userAgent?: string;
  /**
   * A response body must bring at least this many bytes per second, averaged
   * over each window, or it is abandoned like a stall (default 1 KiB/s).
   */
  minBytesPerSecond?: number;
  /** The window that floor is measured over (default: the idle timeout). */
  rateWindowMs?: number;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
}

/**
 * An Authorization value and the one origin (scheme, host and port) it may be
 * sent to: the registry's own, or its token realm's. Every hop of a request is
 * compared with it, so neither a redirect nor a URL the server handed out (a
 * `Link` page, an upload `Location`) can carry it elsewhere.
 */
export interface Authorization {
  header: string;
  origin: string;
}

export interface HttpResponse {
  status: number;
  headers: { get(name: string): string | null };
  /** Final URL after redirects. */
  url: string;
  /** The body, watched for stalls; must be consumed or discarded. */
  body: Readable;
  buffer(limit: number): Promise<Buffer>;
  discard(): void;
}

/**
 * Sends one request and answers with what came back: the seam between the
 * registry protocol and the network. `HttpTransport` is the real one; a test
 * answers from a script instead, with no socket.
 */
export interface RoundTripper {
  send(req: HttpRequest, authorization: Authorization | undefined, what: string): Promise<HttpResponse>;
}

const MAX_REDIRECTS = 5;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Far below any real link (a modem does 5 KiB/s), far above a server that feeds a byte now and then. */
export const DEFAULT_MIN_BYTES_PER_SECOND = 1024;

/**
 * One HTTP exchange with keep-alive agents, manual redirects and a stall
 * watchdog. No retries and no auth here: those belong to the registry session,
 * which knows what may be retried and which credentials apply.
 */
export class HttpTransport implements RoundTripper {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly pace: Pace;
  private readonly userAgent: string;

  constructor(opts: HttpOptions = {}) {
    const maxSockets = opts.maxSockets ?? 16;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    const ca = opts.caFiles?.length ? readCaFiles(opts.caFiles) : undefined;
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets,
      rejectUnauthorized: !opts.insecureSkipTlsVerify,
      // Node replaces its root store when `ca` is given; keep the system roots too.
      ...(ca ? { ca: [...tls.rootCertificates, ...ca] } : {}),
    });
    const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.pace = {
      idleMs,
      windowMs: opts.rateWindowMs ?? idleMs,
      minBytesPerSecond: opts.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND,
    };
    this.userAgent = opts.userAgent ?? 'airgap-bundle';
  }

  /**
   * Sends one request. `authorization` goes only to its own origin: blob
   * downloads redirect to storage backends and CDNs that must never see registry
   * credentials. A redirect from https to plain http is refused outright, so
   * nothing is sent or fetched in clear that was asked for over TLS.
   */
  async send(req: HttpRequest, authorization: Authorization | undefined, what: string): Promise<HttpResponse> {
    let url = parseUrl(req.url, what);
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
      if (authorization && url.origin === authorization.origin) headers.authorization = authorization.header;
      const watchdog = new Watchdog(this.pace);
      // A long upload is alive as long as bytes leave: the watchdog counts them
      // too. Slices keep the count close to what the socket really takes.
      const body =
        req.body instanceof Readable
          ? Readable.from(
              sliced(req.body, () => watchdog.active()),
              { objectMode: false, highWaterMark: SLICE },
            )
          : req.body;
      let res: Response;
      try {
        res = await fetch(url.href, {
          method: req.method,
          headers,
          body,
          redirect: 'manual',
          agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          signal: watchdog.signal,
          compress: false,
        });
      } catch (err) {
        watchdog.stop();
        throw networkError(err, url.host, what);
      }
      const location = res.headers.get('location');
      if (
        [301, 302, 303, 307, 308].includes(res.status) &&
        location &&
        req.method !== 'PUT' &&
        req.method !== 'POST' &&
        req.method !== 'PATCH'
      ) {
        watchdog.stop();
        res.body?.resume();
        if (hop >= MAX_REDIRECTS)
          throw new RegistryError('status', `${url.host}: too many redirects during ${what}`, { status: res.status });
        url = redirectTarget(url, location, res.status, what);
        continue;
      }
      if (req.method === 'HEAD') return headResponse(res, url.href, watchdog);
      return wrapResponse(res, url.href, watchdog, url.host, what);
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function parseUrl(text: string, what: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    throw new RegistryError(
      'malformed',
      `${base?.host ?? 'registry'}: ${what} names a URL that does not parse ("${printable(text, 100)}")`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RegistryError(
      'malformed',
      `${base?.host ?? url.host}: ${what} names a ${printable(url.protocol, 20)} URL; only http and https are followed`,
    );
  }
  return url;
}

function redirectTarget(from: URL, location: string, status: number, what: string): URL {
  const to = parseUrl(location, what, from);
  if (from.protocol === 'https:' && to.protocol === 'http:') {
    throw new RegistryError(
      'status',
      `${from.host}: ${what} was redirected from https to plain http (${printable(redactUrl(to), 120)}); refused, so nothing is fetched or sent in clear: the registry or its storage must redirect to https`,
      { status },
    );
  }
  return to;
}

const SLICE = 64 * 1024;

async function* sliced(source: Readable, progress: () => void): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    const buf = chunk as Buffer;
    for (let i = 0; i < buf.length; i += SLICE) {
      progress();
      yield buf.subarray(i, i + SLICE);
    }
  }
  progress();
}

interface Pace {
  idleMs: number;
  windowMs: number;
  minBytesPerSecond: number;
}

type AbortReason = 'idle' | 'slow' | 'deadline';

/**
 * Abandons an exchange that does not move: no byte for the idle time (a
 * stall), fewer bytes than the floor over a window (a body fed a byte now and
 * then, which keeps any idle timer alive forever), or a body still arriving
 * past the time its size takes at the floor rate. Time during which our own
 * reader held the body back (a slow disk) is not counted against the link.
 */
class Watchdog {
  private readonly controller = new AbortController();
  private readonly idleTimer: NodeJS.Timeout;
  private windowStart = 0;
  private windowBytes = 0;
  /** Time in this window during which our own reader held the body back. */
  private heldMs = 0;
  /** Time spent waiting on the link, in closed windows. */
  private linkMs = 0;
  /** The most `linkMs` may reach: the body's size at the floor rate, plus one window. */
  private allowedMs: number | undefined;
  reason: AbortReason | undefined;

  constructor(private readonly pace: Pace) {
    this.idleTimer = setTimeout(() => this.fire('idle'), pace.idleMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Bytes moved (an upload slice taken by the socket): the exchange is alive. */
  active(): void {
    this.idleTimer.refresh();
  }

  /** The response headers arrived: the body is measured from now. */
  bodyStarts(declaredLength: number | undefined): void {
    this.windowStart = Date.now();
    if (declaredLength !== undefined) this.expect(declaredLength);
  }

  /** The body is at most `bytes` long (its Content-Length, or what the reader accepts). */
  expect(bytes: number): void {
    this.allowedMs ??= this.pace.windowMs + (bytes / this.pace.minBytesPerSecond) * 1000;
  }

  received(n: number): void {
    this.idleTimer.refresh();
    this.windowBytes += n;
    const now = Date.now();
    const elapsed = now - this.windowStart - this.heldMs;
    if (elapsed < this.pace.windowMs) return;
    if (this.windowBytes < (this.pace.minBytesPerSecond * elapsed) / 1000) return this.fire('slow');
    this.linkMs += elapsed;
    if (this.allowedMs !== undefined && this.linkMs > this.allowedMs) return this.fire('deadline');
    this.windowStart = now;
    this.windowBytes = 0;
    this.heldMs = 0;
  }

  /** Our reader held the body back for `ms` (its buffer was full): not the link's time. */
  held(ms: number): void {
    this.heldMs += ms;
  }

  stop(): void {
    clearTimeout(this.idleTimer);
  }

  private fire(reason: AbortReason): void {
    this.reason ??= reason;
    this.stop();
    this.controller.abort();
  }

  /** The error for an exchange this watchdog ended for its pace, or undefined (a stall reads as one). */
  error(host: string, what: string): RegistryError | undefined {
    const floor = `${this.pace.minBytesPerSecond} bytes/s`;
    if (this.reason === 'slow') {
      return new RegistryError(
        'network',
        `${host}: data arrived slower than ${floor} for ${Math.round(this.pace.windowMs / 100) / 10}s during ${what} (trickling connection); abandoned as stalled`,
        { retryable: true },
      );
    }
    if (this.reason === 'deadline') {
      return new RegistryError(
        'network',
        `${host}: ${what} took longer than its size allows at ${floor}; abandoned as stalled`,
        { retryable: true },
      );
    }
    return undefined;
  }
}

/** A response body on its way to our reader, timed: how long the reader left it waiting is known. */
class WatchedBody extends Transform {
  /** When a chunk found the reader's buffer full; cleared when the reader asks for more. */
  private fullSince: number | undefined;

  constructor(private readonly watchdog: Watchdog) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.watchdog.received(chunk.length);
    if (!this.push(chunk)) this.fullSince ??= Date.now();
    cb();
  }

  override _read(size: number): void {
    if (this.fullSince !== undefined) {
      this.watchdog.held(Date.now() - this.fullSince);
      this.fullSince = undefined;
    }
    super._read(size);
  }

  override _flush(cb: TransformCallback): void {
    this.watchdog.stop();
    cb();
  }
}

/**
 * The answer to a HEAD, which has no body to watch: thousands of them (an
 * import that finds everything present) cost a stream pair each otherwise.
 */
function headResponse(res: Response, url: string, watchdog: Watchdog): HttpResponse {
  watchdog.stop();
  (res.body as unknown as Readable | null)?.resume();
  return {
    status: res.status,
    headers: res.headers,
    url,
    get body() {
      return Readable.from([]);
    },
    buffer: () => Promise.resolve(Buffer.alloc(0)),
    discard() {},
  };
}

function wrapResponse(res: Response, url: string, watchdog: Watchdog, host: string, what: string): HttpResponse {
  const raw = (res.body as unknown as Readable | null) ?? Readable.from([]);
  const length = res.headers.get('content-length');
  watchdog.bodyStarts(length !== null && /^\d+$/.test(length) ? Number(length) : undefined);
  // Every chunk re-arms the idle timer and counts towards the floor rate, which
  // turns a stalled or trickling connection into an error instead of a hang; the
  // chunk itself passes through uncopied.
  const watched = new WatchedBody(watchdog);
  raw.on('error', (err) => {
    watchdog.stop();
    watched.destroy(watchdog.error(host, what) ?? networkError(err, host, what));
  });
  watched.on('close', () => watchdog.stop());
  raw.pipe(watched);
  return {
    status: res.status,
    headers: res.headers,
    url,
    body: watched,
    async buffer(limit: number) {
      watchdog.expect(limit);
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of watched) {
        total += (chunk as Buffer).length;
        if (total > limit) {
          watched.destroy();
          throw new RegistryError('malformed', `${host}: response to ${what} exceeds ${limit} bytes`, {
            status: res.status,
          });
        }
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks, total);
    },
    discard() {
      watched.resume();
    },
  };
}

function readCaFiles(files: string[]): string[] {
  return files.map((f) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (err) {
      throw new RegistryError(
        'tls',
        `cannot read CA file ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  });
}
