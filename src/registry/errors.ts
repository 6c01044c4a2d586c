import { printable } from '../util/text.js';

/**
 * Registry failures carry what a user needs to act: which registry, what was
 * asked, the last status. Messages never hold credentials, tokens or signed
 * query strings (blob redirects to CDNs carry those in the URL).
 */
export type RegistryErrorKind =
  | 'network' // connection refused, reset, DNS, stalled
  | 'tls' // certificate verification failed
  | 'auth' // 401/403 after presenting credentials
  | 'not-found' // 404 manifest/blob/repository
  | 'status' // other unexpected status
  | 'digest' // content does not match its digest or size
  | 'malformed' // an answer that breaks the protocol: not JSON, wrong shape, past a size bound, links to another origin
  | 'unsupported'; // schema1, unknown media type

export interface RegistryErrorOptions {
  /** The last HTTP status, when an answer was received. */
  status?: number;
  /** Whether another attempt may succeed (network, 429, 5xx, digest during transfer). */
  retryable?: boolean;
  /** Server-requested delay for 429/503 (`Retry-After`), in ms. */
  retryAfterMs?: number;
}

export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
    opts: RegistryErrorOptions = {},
  ) {
    super(message);
    this.status = opts.status;
    this.retryable = opts.retryable ?? false;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Strips query and fragment: signed CDN URLs carry credentials there. */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    u.username = '';
    u.password = '';
    return `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
]);

/** Turns a low-level fetch/socket failure into a one-line RegistryError. */
export function networkError(err: unknown, host: string, what: string): RegistryError {
  if (err instanceof RegistryError) return err;
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string }; name?: string };
  const code = e.code ?? e.cause?.code;
  if (code && TLS_CODES.has(code)) {
    return new RegistryError(
      'tls',
      `${host}: TLS certificate verification failed (${code}) during ${what}; pass the registry's CA with --ca-file PEM, use --plain-http for an http registry, or --insecure-skip-tls-verify as a last resort`,
    );
  }
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(e.message ?? '')) {
    return new RegistryError(
      'tls',
      `${host}: TLS handshake failed during ${what}; if the registry speaks plain HTTP, pass --plain-http or an http:// mirror URL`,
    );
  }
  if (e.name === 'AbortError' || code === 'ETIMEDOUT' || code === 'ESTALLED') {
    return new RegistryError('network', `${host}: no data for too long during ${what} (stalled connection)`, {
      retryable: true,
    });
  }
  // Socket and parser messages may quote what the server sent: escaped, like every registry string.
  const detail = printable(code ?? e.cause?.message ?? e.message ?? String(err));
  const hint =
    code === 'ECONNREFUSED'
      ? ' — is the registry running and the address right?'
      : code === 'ENOTFOUND'
        ? ' — host name does not resolve'
        : '';
  return new RegistryError('network', `${host}: ${what} failed: ${detail}${hint}`, { retryable: true });
}
