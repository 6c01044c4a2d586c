import { printable } from '../util/text.js';
import { endpointOrigin, type Endpoint } from './endpoint.js';
import { RegistryError } from './errors.js';

/** Scheme, host and port of `url`, or undefined when it does not parse. */
export function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/**
 * `target` resolved against `base` (the registry by default), refused when it
 * leaves the registry's origin: a page link is the registry's own word about
 * where the rest of an answer is, and nothing it says may send the client to
 * another server.
 */
export function sameOriginUrl(ep: Endpoint, target: string, what: string, base: string = ep.baseUrl): string {
  let url: URL;
  try {
    url = new URL(target, base);
  } catch {
    throw new RegistryError('malformed', `${what}: a page link that does not parse ("${printable(target, 100)}")`, {
      status: 200,
    });
  }
  if (url.origin !== endpointOrigin(ep)) {
    throw new RegistryError(
      'malformed',
      `${what}: the next page is on another origin (${printable(url.origin, 100)}); not followed, since only ${endpointOrigin(ep)} is asked`,
      { status: 200 },
    );
  }
  return url.href;
}
