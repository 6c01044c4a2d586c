import { RegistryError } from './errors.js';

export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 400, maxDelayMs: 15_000 };

/** Exponential backoff with full jitter, so parallel workers do not retry in lockstep. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** `Retry-After` is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/**
 * Rate limiting (429) is the registry asking to slow down, not a failure: it
 * gets twice the attempts of other faults, still bounded (none with --retries 0).
 */
function budget(policy: RetryPolicy, err: RegistryError): number {
  return err.status === 429 ? policy.retries * 2 : policy.retries;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `op` until it succeeds, fails with a non-retryable error, or the budget is
 * spent. The last error is rethrown unchanged so its message names what failed.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  op: (attempt: number) => Promise<T>,
  onRetry?: (err: RegistryError, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op(attempt);
    } catch (err) {
      if (!(err instanceof RegistryError) || !err.retryable || attempt >= budget(policy, err)) throw err;
      // `Retry-After: 0` still backs off a little, so a burst of 429s is not answered with a burst of retries.
      const delay = Math.min(
        policy.maxDelayMs,
        err.retryAfterMs !== undefined
          ? Math.max(err.retryAfterMs, backoffDelay(policy, attempt) / 2)
          : backoffDelay(policy, attempt),
      );
      onRetry?.(err, attempt + 1, delay);
      await sleep(delay);
    }
  }
}
