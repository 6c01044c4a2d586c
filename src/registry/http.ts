import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import fetch, { type Response } from 'node-fetch';
import { networkError, RegistryError } from './errors.js';

export interface HttpOptions {
  /** Extra CA certificates (PEM files) trusted besides the system roots. */
  caFiles?: string[];
  insecureSkipTlsVerify?: boolean;
  /** Abort when no byte arrives for this long (headers or body). */
  idleTimeoutMs?: number;
  maxSockets?: number;
  userAgent?: string;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
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

const MAX_REDIRECTS = 5;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * One HTTP exchange with keep-alive agents, manual redirects and a stall
 * watchdog. No retries and no auth here: those belong to the registry session,
 * which knows what may be retried and which credentials apply.
 */
export class HttpTransport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly idleTimeoutMs: number;
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
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.userAgent = opts.userAgent ?? 'airgap-bundle';
  }

  /**
   * Sends one request. `authorization` is dropped when a redirect leaves the
   * original host: blob downloads redirect to storage backends and CDNs that must
   * never see registry credentials.
   */
  async send(req: HttpRequest, authorization: string | undefined, what: string): Promise<HttpResponse> {
    let url = new URL(req.url);
    const originHost = url.host;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
      if (authorization && url.host === originHost) headers.authorization = authorization;
      const controller = new AbortController();
      let timer = setTimeout(() => controller.abort(), this.idleTimeoutMs);
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), this.idleTimeoutMs);
      };
      // A long upload is alive as long as bytes leave: the watchdog counts them
      // too. Slices keep the count close to what the socket really takes.
      const body = req.body instanceof Readable ? Readable.from(sliced(req.body, arm), { objectMode: false, highWaterMark: SLICE }) : req.body;
      let res: Response;
      try {
        res = await fetch(url.href, {
          method: req.method,
          headers,
          body,
          redirect: 'manual',
          agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          signal: controller.signal,
          compress: false,
        });
      } catch (err) {
        clearTimeout(timer);
        throw networkError(err, url.host, what);
      }
      const location = res.headers.get('location');
      if ([301, 302, 303, 307, 308].includes(res.status) && location && req.method !== 'PUT' && req.method !== 'POST' && req.method !== 'PATCH') {
        clearTimeout(timer);
        res.body?.resume();
        if (hop >= MAX_REDIRECTS) throw new RegistryError('status', `${originHost}: too many redirects during ${what}`, res.status);
        url = new URL(location, url);
        continue;
      }
      return wrapResponse(res, url.href, arm, () => clearTimeout(timer), url.host, what);
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
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

function wrapResponse(res: Response, url: string, arm: () => void, done: () => void, host: string, what: string): HttpResponse {
  const raw = (res.body as unknown as Readable | null) ?? Readable.from([]);
  // Re-arming the idle timer on every chunk turns a stalled connection into an error
  // instead of a hang; the chunk itself passes through uncopied.
  const watched = new Transform({
    transform(chunk, _enc, cb) {
      arm();
      cb(null, chunk);
    },
    flush(cb) {
      done();
      cb();
    },
  });
  raw.on('error', (err) => {
    done();
    watched.destroy(networkError(err, host, what));
  });
  watched.on('close', done);
  raw.pipe(watched);
  return {
    status: res.status,
    headers: res.headers,
    url,
    body: watched,
    async buffer(limit: number) {
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of watched) {
        total += (chunk as Buffer).length;
        if (total > limit) {
          watched.destroy();
          throw new RegistryError('status', `${host}: response to ${what} exceeds ${limit} bytes`, res.status);
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
      throw new RegistryError('tls', `cannot read CA file ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  });
}
