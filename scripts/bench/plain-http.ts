/**
 * Plain HTTP requests for the ceilings: Node's own client on kept-alive connections, nothing of
 * the tool's registry client (no retries, no auth, no hashing), so what they measure is the
 * registry and the machine, not a client's logic.
 */
import http from 'node:http';
import type { Readable } from 'node:stream';

export interface PlainRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  /** Path and query on the registry, or an absolute URL the registry gave (an upload's Location). */
  path: string;
  headers?: Record<string, string>;
  /** Sent whole (a manifest) or streamed (a blob read from a file). */
  body?: Buffer | Readable;
}

export interface PlainResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body kept (empty when a sink took it). */
  body: Buffer;
  /** Bytes of body received. */
  bytes: number;
}

/**
 * One request to `host` (HOST:PORT). The answer's body goes to `sink` when one is given (a blob
 * being written to disk, read with backpressure); otherwise it is read in full and at most
 * `keepUpTo` bytes of it are kept (a longer one fails the request: only manifests are kept).
 */
export function plainRequest(
  agent: http.Agent,
  host: string,
  req: PlainRequest,
  opts: { keepUpTo?: number; sink?: (body: Readable) => Promise<number> } = {},
): Promise<PlainResponse> {
  const url = new URL(req.path, `http://${host}`);
  return new Promise((resolve, reject) => {
    const out = http.request(url, { method: req.method, agent, headers: req.headers ?? {} }, (res) => {
      const status = res.statusCode ?? 0;
      const done = (body: Buffer, bytes: number) => resolve({ status, headers: res.headers, body, bytes });
      if (opts.sink && status === 200) opts.sink(res).then((bytes) => done(Buffer.alloc(0), bytes), reject);
      else keepBody(res, opts.keepUpTo ?? 4096, `${req.method} ${url.pathname}`).then((b) => done(b, b.length), reject);
    });
    out.on('error', reject);
    if (req.body === undefined) out.end();
    else if (Buffer.isBuffer(req.body)) out.end(req.body);
    else {
      req.body.on('error', (err) => out.destroy(err));
      req.body.pipe(out);
    }
  });
}

/** The whole body, refused past `limit` bytes. */
async function keepBody(body: Readable, limit: number, what: string): Promise<Buffer> {
  const kept: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > limit) {
      body.destroy();
      throw new Error(`${what}: answer over ${limit} bytes`);
    }
    kept.push(chunk);
  }
  return Buffer.concat(kept);
}

/** Throws, naming the request, unless the registry answered one of `expected`. */
export function expectStatus(res: PlainResponse, expected: number[], what: string): void {
  if (!expected.includes(res.status))
    throw new Error(`${what}: the registry answered ${res.status} ${res.body.toString('utf8').slice(0, 200)}`);
}
