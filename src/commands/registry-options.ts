import type { Argv } from 'yargs';
import { Authenticator } from '../registry/auth.js';
import { RegistryClient, type RetryEvent } from '../registry/client.js';
import { loadCredentials, type Credential } from '../registry/credentials.js';
import { parseMirror, type Mirror } from '../registry/endpoint.js';
import { HttpTransport } from '../registry/http.js';
import { DEFAULT_RETRY } from '../registry/retry.js';
import { UsageError } from './errors.js';
import { printable } from '../util/text.js';

/** Options every command that talks to a registry shares, with the same meaning everywhere. */
export interface RegistryArgs {
  'plain-http': boolean;
  'ca-file'?: string[];
  'insecure-skip-tls-verify': boolean;
  authfile?: string;
  retries: number;
  timeout: number;
  concurrency: number;
}

export function registryOptions<T>(y: Argv<T>) {
  return y
    .option('plain-http', {
      type: 'boolean',
      default: false,
      describe: 'Talk plain HTTP to registries given without a scheme',
    })
    .option('ca-file', { type: 'string', array: true, describe: 'PEM file of a private CA to trust (repeatable)' })
    .option('insecure-skip-tls-verify', {
      type: 'boolean',
      default: false,
      describe: 'Do not verify registry TLS certificates (last resort)',
    })
    .option('authfile', {
      type: 'string',
      describe: 'Docker config.json with credentials (default: $DOCKER_CONFIG/config.json, ~/.docker/config.json)',
    })
    .option('retries', {
      type: 'number',
      default: DEFAULT_RETRY.retries,
      describe: 'Retries per request on connection errors, 429 and 5xx',
    })
    .option('timeout', {
      type: 'number',
      default: 60,
      describe:
        'Seconds without data before a connection counts as stalled; also the window over which a response must average at least 1 KiB/s',
    })
    .option('concurrency', { type: 'number', default: 4, describe: 'Parallel transfers' });
}

/** `--chunk-size`: `8M`, `512K`, `1048576` (bytes); binary multiples. */
export function parseChunkSize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(String(text).trim());
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  const bytes = m ? Math.floor(Number(m[1]) * mult[m[2]!.toLowerCase()]!) : NaN;
  if (!(bytes >= 1024))
    throw new UsageError(`--chunk-size "${printable(String(text))}" is not a size of at least 1K (e.g. 512K, 8M)`);
  return bytes;
}

export function parseMirrors(values: readonly string[]): Mirror[] {
  try {
    return values.map(parseMirror);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function buildClient(
  args: RegistryArgs,
  extra: {
    mirrors?: Mirror[];
    explicit?: { host: string; credential: Credential };
    onRetry?: (e: RetryEvent) => void;
    chunkSize?: number;
  },
): { client: RegistryClient; http: HttpTransport; auth: Authenticator; close: () => void } {
  if (!Number.isInteger(args.concurrency) || args.concurrency < 1 || args.concurrency > 64)
    throw new UsageError('--concurrency must be a whole number from 1 to 64');
  if (!Number.isInteger(args.retries) || args.retries < 0 || args.retries > 20)
    throw new UsageError('--retries must be a whole number from 0 to 20');
  if (!(args.timeout > 0)) throw new UsageError('--timeout must be a positive number of seconds');
  const http = new HttpTransport({
    caFiles: args['ca-file'] ?? [],
    insecureSkipTlsVerify: args['insecure-skip-tls-verify'],
    idleTimeoutMs: args.timeout * 1000,
    maxSockets: args.concurrency * 2,
  });
  // A missing or malformed auth file is the user's input to fix (CredentialsError, exit 2), before any request.
  const credentials = loadCredentials({
    ...(args.authfile ? { authfile: args.authfile } : {}),
    ...(extra.explicit ? { explicit: extra.explicit } : {}),
  });
  const auth = new Authenticator(http, credentials);
  const client = new RegistryClient(http, auth, {
    mirrors: extra.mirrors ?? [],
    plainHttp: args['plain-http'],
    retry: { ...DEFAULT_RETRY, retries: args.retries },
    ...(extra.onRetry ? { onRetry: extra.onRetry } : {}),
    ...(extra.chunkSize !== undefined ? { chunkSize: extra.chunkSize } : {}),
  });
  return { client, http, auth, close: () => http.close() };
}
