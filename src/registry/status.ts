import { printable } from '../util/text.js';
import { RegistryError, redactUrl } from './errors.js';
import type { HttpResponse } from './http.js';
import { isRetryableStatus, parseRetryAfter } from './retry.js';

/**
 * How much of an error body is read. Registries explain a refusal in a short
 * JSON document; anything longer is not an explanation worth holding.
 */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * Passes an answer whose status is one of `ok`; any other is discarded and
 * becomes the error a user acts on: 403 is a missing permission, the rest are
 * statuses the protocol does not expect here (retryable when the status says so).
 */
export function expectStatus(res: HttpResponse, ok: number[], what: string): void {
  if (ok.includes(res.status)) return;
  res.discard();
  if (res.status === 403)
    throw new RegistryError('auth', `${what}: access denied (403); the account lacks permission for this repository`, {
      status: 403,
    });
  throw statusError(
    res.status,
    `${what}: unexpected status ${res.status} from ${printable(redactUrl(res.url), 120)}`,
    res.headers,
  );
}

/** A `status` error, retryable when the status is, after the delay the registry asked for. */
export function statusError(status: number, message: string, headers: HttpResponse['headers']): RegistryError {
  return new RegistryError('status', message, {
    status,
    retryable: isRetryableStatus(status),
    retryAfterMs: parseRetryAfter(headers.get('retry-after')),
  });
}

/**
 * The body of an error answer as text, bounded; '' when it cannot be read. The
 * status already says the request failed: a body that breaks off only loses
 * the explanation, so reading it never fails in turn.
 */
export async function readErrorText(res: HttpResponse): Promise<string> {
  const bytes = await res.buffer(MAX_ERROR_BODY).catch(() => Buffer.alloc(0));
  return bytes.toString('utf8');
}

/** `errors[0]` of a distribution-spec error body, or undefined when the body is not one. */
export function firstError(text: string): { code?: string; message?: string } | undefined {
  try {
    const e = (JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> }).errors?.[0];
    if (!e) return undefined;
    return {
      ...(typeof e.code === 'string' ? { code: e.code } : {}),
      ...(typeof e.message === 'string' ? { message: e.message } : {}),
    };
  } catch {
    return undefined;
  }
}

/** `CODE: message` of an error body, escaped, for one-line messages ('' when there is none). */
export function errorSummary(text: string): string {
  const e = firstError(text);
  return e ? printable([e.code, e.message].filter((x) => x !== undefined && x !== '').join(': '), 200) : '';
}
