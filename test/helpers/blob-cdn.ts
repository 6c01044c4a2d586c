// A stand-in for the storage backend or CDN that registries redirect blob downloads to: another
// host:port that records every request's headers (so a test can see what a client disclosed to it)
// and serves the blob, fetched from the registry with the registry's own credentials.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CdnRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export interface BlobCdn {
  url: string;
  host: string;
  seen: CdnRequest[];
  /** Answer this status (with a JSON body) instead of serving, while set. */
  failWith: number | undefined;
  /** The URL a registry would redirect to for `repo`'s blob `digest`, with a signed-URL style query. */
  locationFor(repo: string, digest: string, signature: string): string;
  stop(): Promise<void>;
}

/** Serves `/cdn/<repo>/blobs/<digest>?…` from `registryUrl`'s `/v2/<repo>/blobs/<digest>`. */
export async function startBlobCdn(registryUrl: string, registryAuthorization?: string): Promise<BlobCdn> {
  const registry = new URL(registryUrl);
  const seen: CdnRequest[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } });
    req.resume();
    const m = /^\/cdn\/(.+)\/blobs\/(sha256:[a-f0-9]{64})(?:\?.*)?$/.exec(req.url ?? '');
    if (cdn.failWith !== undefined || !m) {
      res.writeHead(cdn.failWith ?? 404, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: 'denied by the test CDN' }));
    }
    const headers: Record<string, string> = registryAuthorization ? { authorization: registryAuthorization } : {};
    const up = http.get(
      { host: registry.hostname, port: registry.port, path: `/v2/${m[1]}/blobs/${m[2]}`, headers },
      (r) => {
        const out: Record<string, string> = { 'content-type': 'application/octet-stream' };
        if (r.headers['content-length']) out['content-length'] = r.headers['content-length'];
        res.writeHead(r.statusCode ?? 502, out);
        r.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  let stopped: Promise<void> | undefined;
  const cdn: BlobCdn = {
    url: `http://${host}`,
    host,
    seen,
    failWith: undefined,
    locationFor: (repo, digest, signature) =>
      `http://${host}/cdn/${repo}/blobs/${digest}?X-Amz-Expires=300&X-Amz-Signature=${signature}`,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
  };
  return cdn;
}
