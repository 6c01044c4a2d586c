import { createHash } from 'node:crypto';
import type { Endpoint } from '../registry/endpoint.js';
import { RegistryError, redactUrl } from '../registry/errors.js';
import { expectStatus } from '../registry/status.js';
import { AuthTransport } from '../registry/transport.js';
import { printable } from '../util/text.js';
import type { ChartContext } from './context.js';
import { ChartError } from './errors.js';

/**
 * One file of a classic chart repository (index.yaml, a .tgz, a .prov), read
 * into memory up to `limit` bytes. The request goes through the registry
 * layer's authorizing transport with the URL's own origin as the endpoint: a
 * 401 is answered with that host's credentials, and no credential reaches any
 * other origin. Retried as registry requests are. `optional`: a 404 is
 * undefined instead of an error.
 */
export async function fetchRepositoryFile(
  ctx: ChartContext,
  url: URL,
  limit: number,
  what: string,
  optional = false,
): Promise<Buffer | undefined> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ChartError(`${what}: ${printable(redactUrl(url), 160)} is not an http or https URL; not fetched`);
  const endpoint: Endpoint = { baseUrl: url.origin, host: url.host, pathPrefix: '' };
  const transport = new AuthTransport(ctx.http, ctx.auth);
  return ctx.registry.retrying(what, async () => {
    const res = await transport.send(
      endpoint,
      `chart-repository:${url.pathname}:pull`,
      { method: 'GET', url: url.href },
      what,
    );
    if (res.status === 404) {
      res.discard();
      if (optional) return undefined;
      throw new RegistryError('not-found', `${what}: not found (404) at ${printable(redactUrl(url), 160)}`, {
        status: 404,
      });
    }
    expectStatus(res, [200], what);
    return res.buffer(limit);
  });
}

/** `sha256:<hex>` of `bytes`. */
export function sha256Of(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
