import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError, redactUrl } from '../registry/errors.js';
import type { Authorization, RoundTripper } from '../registry/http.js';
import { withRetry, type RetryPolicy } from '../registry/retry.js';
import { expectStatus } from '../registry/status.js';
import { digestHex } from '../oci/digest.js';
import { publishPartial, syncPath } from '../util/atomic-file.js';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';
import { hashFile, MAX_FILE_BYTES, type StagedFile } from './staged.js';

/**
 * A URL file fetched into a staging folder before the bundle is written: its
 * layer is then read from local disk, like a path file. The file is named by
 * its sha256 there, so a second run (or a rerun after a failure) finds it
 * intact and fetches nothing.
 */

export interface DownloadOptions {
  /** The project's HTTP layer: redirects, https-only after https, the stall watchdog, `--ca-file`. */
  transport: RoundTripper;
  retry: RetryPolicy;
  onRetry?: (err: RegistryError, attempt: number, delayMs: number) => void;
  /** Bytes received, for a progress bar. */
  onBytes?: (n: number) => void;
}

/** The bytes fetched are not the ones pinned: refused, nothing kept (exit 2: the pin or the URL is wrong). */
export class PinMismatchError extends UserInputError {
  override name = 'PinMismatchError';
}

/**
 * Fetches `url` into `staging`, hashed as it streams and written under a
 * hidden temporary name, renamed to `<hex>` once complete and (when pinned)
 * matching. A pinned file already staged and intact is not fetched again.
 * A download cut short (fewer bytes than its Content-Length, a reset, a
 * stall) is retried from the start; a complete one with other bytes than
 * pinned is refused at once.
 */
export async function stageUrl(
  file: { url: string; sha256?: string; name: string },
  staging: string,
  opts: DownloadOptions,
): Promise<StagedFile> {
  await mkdir(staging, { recursive: true });
  if (file.sha256 !== undefined) {
    const done = await alreadyStaged(staging, file.sha256);
    if (done) return done;
  }
  const request = credentialsOf(file.url);
  const what = `download of ${printable(file.name)}`;
  return withRetry(opts.retry, () => fetchOnce(request, file.sha256, staging, what, opts), opts.onRetry);
}

/** The staged copy of `sha256`, when present and intact; a damaged one is removed. */
async function alreadyStaged(staging: string, sha256: string): Promise<StagedFile | undefined> {
  const path = join(staging, digestHex(sha256));
  const found = await hashFile(path);
  if (found?.digest === sha256) return { path, ...found };
  if (found) await rm(path, { force: true });
  return undefined;
}

/**
 * The URL without its user and password, and those as a Basic authorization
 * bound to the URL's own origin: the transport sends it there only, never to
 * where a redirect leads.
 */
function credentialsOf(text: string): { url: string; authorization?: Authorization } {
  const url = new URL(text);
  if (url.username === '' && url.password === '') return { url: url.href };
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  const header = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  return { url: url.href, authorization: { header, origin: url.origin } };
}

async function fetchOnce(
  request: { url: string; authorization?: Authorization },
  sha256: string | undefined,
  staging: string,
  what: string,
  opts: DownloadOptions,
): Promise<StagedFile> {
  const res = await opts.transport.send(
    { method: 'GET', url: request.url, headers: { accept: '*/*' } },
    request.authorization,
    what,
  );
  expectStatus(res, [200], what);
  const declared = declaredLength(res.headers.get('content-length'), what);
  const partial = join(staging, `.download-${randomBytes(6).toString('hex')}.partial-${process.pid}`);
  const counter = new CountingHash(what, opts.onBytes);
  try {
    await pipeline(res.body, counter, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
    const got = counter.result();
    if (declared !== undefined && got.size !== declared)
      throw new RegistryError('network', `${what}: the answer ended after ${got.size} of ${declared} bytes`, {
        retryable: true,
      });
    if (sha256 !== undefined && got.digest !== sha256)
      throw new PinMismatchError(
        `${what}: ${printable(redactUrl(request.url), 160)} sent bytes with ${got.digest}, not the pinned ${sha256}; nothing was kept: check the pin, or the URL`,
      );
    await syncPath(partial);
    const path = join(staging, digestHex(got.digest));
    await publishPartial(partial, path);
    return { path, ...got };
  } finally {
    await rm(partial, { force: true });
  }
}

function declaredLength(header: string | null, what: string): number | undefined {
  if (header === null || !/^\d{1,20}$/.test(header)) return undefined;
  const n = Number(header);
  if (n > MAX_FILE_BYTES)
    throw new RegistryError(
      'malformed',
      `${what}: ${n} bytes, more than the ${MAX_FILE_BYTES} one carried file may have`,
    );
  return n;
}

/** Passes the body through, hashing and counting it, and stops it past the bound. */
class CountingHash extends Transform {
  private readonly hash = createHash('sha256');
  private size = 0;

  constructor(
    private readonly what: string,
    private readonly onBytes?: (n: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > MAX_FILE_BYTES)
      return cb(
        new RegistryError('malformed', `${this.what}: more than the ${MAX_FILE_BYTES} bytes one carried file may have`),
      );
    this.hash.update(chunk);
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }

  result(): { digest: string; size: number } {
    return { digest: `sha256:${this.hash.digest('hex')}`, size: this.size };
  }
}
