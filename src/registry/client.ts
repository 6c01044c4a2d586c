import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { MANIFEST_ACCEPT } from '../oci/media-types.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { isValidMediaType } from '../oci/descriptor.js';
import { parseBoundedJson } from '../util/json.js';
import { printable } from '../util/text.js';
import { isValidDigest, isValidRepositoryPath, isValidTag } from '../reference/reference.js';
import { Authenticator } from './auth.js';
import { endpointOrigin, endpointRepository, resolveEndpoint, type Endpoint, type Mirror } from './endpoint.js';
import { RegistryError, redactUrl } from './errors.js';
import { Repository } from './repository.js';
import type { HttpRequest, HttpResponse, HttpTransport } from './http.js';
import { DEFAULT_RETRY, isRetryableStatus, parseRetryAfter, withRetry, type RetryPolicy } from './retry.js';

export interface FetchedManifest {
  bytes: Buffer;
  /** Content-Type as served (the document's own mediaType may be absent). */
  mediaType: string | undefined;
  /** sha256 of the bytes, computed here: the registry's header is only a claim. */
  digest: string;
}

export interface RetryEvent {
  what: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface RegistryClientOptions {
  mirrors?: readonly Mirror[];
  plainHttp?: boolean;
  retry?: RetryPolicy;
  onRetry?: (e: RetryEvent) => void;
  /** Upload blobs larger than this in PATCH chunks of at most this many bytes. */
  chunkSize?: number;
}

/** The chunk size used when a registry refuses a monolithic upload and no --chunk-size was given. */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

export type Access = 'pull' | 'pull,push';

/**
 * A distribution-spec client for every registry a run talks to. Callers speak
 * in (registry, repository) of the ORIGINAL reference; the endpoint mapping
 * (Docker Hub's API host, mirrors, path prefixes) happens here, once.
 */
export class RegistryClient {
  private readonly auth: Authenticator;
  private readonly retry: RetryPolicy;
  /** Registries that answered 404 to the referrers API: they do not offer it, so it is not asked again. */
  private readonly withoutReferrersApi = new Set<string>();
  /** Registries that refused a monolithic upload as too large (413): they get chunks from then on. */
  private readonly needsChunks = new Set<string>();

  constructor(
    private readonly http: HttpTransport,
    auth: Authenticator,
    private readonly opts: RegistryClientOptions = {},
  ) {
    this.auth = auth;
    this.retry = opts.retry ?? DEFAULT_RETRY;
  }

  /** A handle on one repository of `registry`, for calls that all concern it. */
  repository(registry: string, name: string): Repository {
    return new Repository(this, registry, name);
  }

  endpoint(registry: string): Endpoint {
    return resolveEndpoint(registry, this.opts.mirrors ?? [], this.opts.plainHttp ?? false);
  }

  /**
   * Fetches a manifest or index by tag or digest, checking the digest when
   * pinned. `maxBytes` is what the caller expects at most (a descriptor's size):
   * a longer body is refused as it arrives, never held.
   */
  async getManifest(
    registry: string,
    repository: string,
    selector: string,
    maxBytes = MAX_MANIFEST_BYTES,
  ): Promise<FetchedManifest> {
    const what = `manifest ${registry}/${repository}:${selector}`;
    const pinned = selector.includes(':');
    // Manifests are stored and checked by sha256 throughout; another algorithm could not be verified here.
    if (pinned && !selector.startsWith('sha256:'))
      throw new RegistryError('unsupported', `${what}: only sha256 manifest digests are supported`);
    return this.retrying(what, async () => {
      const res = await this.request(
        registry,
        repository,
        'pull',
        { method: 'GET', path: `manifests/${selector}`, headers: { accept: MANIFEST_ACCEPT } },
        what,
      );
      if (res.status === 404) {
        res.discard();
        throw new RegistryError(
          'not-found',
          `${what}: not found (404); check the name and tag, or that the registry holds it`,
          { status: 404 },
        );
      }
      expectStatus(res, [200], what);
      const bytes = await res.buffer(Math.min(maxBytes, MAX_MANIFEST_BYTES));
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      if (pinned && selector !== digest) {
        throw new RegistryError('digest', `${what}: the registry served content with digest ${digest}`, {
          status: 200,
          retryable: true,
        });
      }
      // By tag, the registry's own digest header is the only reference: bytes that
      // disagree with it were damaged on the way (or the registry is broken).
      const claimed = res.headers.get('docker-content-digest');
      if (!pinned && claimed && /^sha256:[a-f0-9]{64}$/.test(claimed) && claimed !== digest) {
        throw new RegistryError(
          'digest',
          `${what}: content has digest ${digest} but the registry announced ${claimed}`,
          { status: 200, retryable: true },
        );
      }
      return { bytes, mediaType: servedMediaType(res), digest };
    });
  }

  /** HEAD of a manifest: its digest, or undefined when absent. */
  async headManifest(
    registry: string,
    repository: string,
    selector: string,
    access: Access = 'pull',
  ): Promise<{ digest: string | undefined; mediaType: string | undefined } | undefined> {
    const what = `manifest ${registry}/${repository}:${selector}`;
    const head = await this.retrying(what, async () => {
      const res = await this.request(
        registry,
        repository,
        access,
        { method: 'HEAD', path: `manifests/${selector}`, headers: { accept: MANIFEST_ACCEPT } },
        what,
      );
      res.discard();
      if (res.status === 404) return undefined;
      expectStatus(res, [200], what);
      return { digest: servedDigest(res), mediaType: servedMediaType(res) };
    });
    if (!head || head.digest !== undefined) return head;
    // Caching proxies drop Docker-Content-Digest: the digest is then computed from the bytes themselves.
    try {
      const got = await this.getManifest(registry, repository, selector);
      return { digest: got.digest, mediaType: got.mediaType ?? head.mediaType };
    } catch (err) {
      if (err instanceof RegistryError && err.kind === 'not-found') return undefined;
      throw err;
    }
  }

  /**
   * Opens a blob for download, once: the caller streams and verifies it, and
   * retries the whole transfer (headers or body failing alike) within one budget.
   */
  async openBlob(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<{ body: Readable; size: number | undefined }> {
    const what = `blob ${digest} of ${registry}/${repository}`;
    return (async () => {
      const res = await this.request(registry, repository, 'pull', { method: 'GET', path: `blobs/${digest}` }, what);
      if (res.status === 404) {
        res.discard();
        throw new RegistryError('not-found', `${what}: not found (404)`, { status: 404 });
      }
      expectStatus(res, [200], what);
      const len = res.headers.get('content-length');
      return { body: res.body, size: len !== null ? Number(len) : undefined };
    })();
  }

  /** The retry policy and the retry report of this client, for transfers retried by their callers. */
  get retryPolicy(): RetryPolicy {
    return this.retry;
  }

  reportRetry(e: RetryEvent): void {
    this.opts.onRetry?.(e);
  }

  async hasBlob(registry: string, repository: string, digest: string): Promise<boolean> {
    const what = `blob ${digest} in ${registry}/${repository}`;
    return this.retrying(what, async () => {
      const res = await this.request(
        registry,
        repository,
        'pull,push',
        { method: 'HEAD', path: `blobs/${digest}` },
        what,
      );
      res.discard();
      if (res.status === 404) return false;
      expectStatus(res, [200], what);
      return true;
    });
  }

  /**
   * Cross-repository mount. Returns true when mounted; false when the registry
   * declined (it then opened an upload session, which is cancelled).
   */
  async mountBlob(registry: string, repository: string, digest: string, fromRepository: string): Promise<boolean> {
    const what = `mount of ${digest} into ${registry}/${repository}`;
    const ep = this.endpoint(registry);
    const from = endpointRepository(ep, fromRepository);
    return this.retrying(what, async () => {
      const res = await this.request(
        registry,
        repository,
        'pull,push',
        {
          method: 'POST',
          path: `blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
          headers: { 'content-length': '0' },
        },
        what,
        `repository:${from}:pull`,
      );
      res.discard();
      if (res.status === 201) return true;
      if (res.status === 202) {
        const loc = res.headers.get('location');
        if (loc) await this.cancelUpload(registry, repository, new URL(loc, ep.baseUrl).href);
        return false;
      }
      expectStatus(res, [201, 202], what);
      return false;
    });
  }

  /**
   * Whether the registry takes pushes into `repository`: an upload session is
   * opened and cancelled. Returns why not when it answers 404 (`NAME_UNKNOWN`:
   * the repository must exist first) or 403 (a project that does not exist, or
   * no push right); undefined otherwise, and for any other answer (the push
   * itself then says what is wrong).
   */
  async probePush(registry: string, repository: string): Promise<string | undefined> {
    const what = `push to ${registry}/${repository}`;
    const ep = this.endpoint(registry);
    return this.retrying(what, async () => {
      const res = await this.request(
        registry,
        repository,
        'pull,push',
        { method: 'POST', path: 'blobs/uploads/', headers: { 'content-length': '0' } },
        what,
      );
      if (res.status === 404 || res.status === 403) {
        const text = (await res.buffer(64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8');
        return `${res.status}${registryErrorCode(text) ? ` ${registryErrorCode(text)}` : ''}`;
      }
      res.discard();
      const loc = res.headers.get('location');
      if (res.status === 202 && loc)
        await this.cancelUpload(registry, repository, new URL(loc, res.url || ep.baseUrl).href);
      return undefined;
    });
  }

  /**
   * Upload: POST opens the session (and settles auth before any body byte is
   * sent), then one PUT streams the body with `?digest=`, so the registry checks
   * the content against the digest before it becomes visible. With a chunk
   * size, or once the registry refused a monolithic body as too large (413),
   * the body goes in PATCH chunks of at most that size, and the PUT closes it.
   */
  async uploadBlob(
    registry: string,
    repository: string,
    digest: string,
    size: number,
    body: () => Readable | Buffer,
  ): Promise<void> {
    const what = `upload of ${digest} to ${registry}/${repository}`;
    await this.retrying(what, async () => {
      const chunk = this.opts.chunkSize ?? (this.needsChunks.has(registry) ? DEFAULT_CHUNK_SIZE : undefined);
      let session = await this.openUpload(registry, repository, what);
      if (chunk !== undefined && size > chunk)
        return this.putChunked(registry, repository, { digest, session, body: body(), chunk, size }, what);
      const whole = body();
      const res = await this.putUpload(registry, repository, digest, session, size, whole, what);
      if (res.status !== 413) return checkPut(res, what);
      res.discard();
      if (!Buffer.isBuffer(whole)) whole.destroy();
      // Too large for one request: this registry takes chunks only.
      await this.cancelUpload(registry, repository, session.href);
      this.needsChunks.add(registry);
      session = await this.openUpload(registry, repository, what);
      return this.putChunked(
        registry,
        repository,
        { digest, session, body: body(), chunk: chunk ?? DEFAULT_CHUNK_SIZE, size },
        what,
      );
    });
  }

  /** POST of a new upload session: its Location, resolved against the answer that gave it. */
  private async openUpload(registry: string, repository: string, what: string): Promise<URL> {
    const start = await this.request(
      registry,
      repository,
      'pull,push',
      { method: 'POST', path: 'blobs/uploads/', headers: { 'content-length': '0' } },
      what,
    );
    start.discard();
    expectStatus(start, [202], what);
    return uploadLocation(start, what);
  }

  /** The closing PUT of an upload session with `?digest=`, carrying `body` (or nothing after chunks). */
  private putUpload(
    registry: string,
    repository: string,
    digest: string,
    session: URL,
    size: number,
    body: Readable | Buffer,
    what: string,
  ): Promise<HttpResponse> {
    const put = new URL(session.href);
    put.searchParams.set('digest', digest);
    return this.requestUrl(
      registry,
      repository,
      'pull,push',
      {
        method: 'PUT',
        url: put.href,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body,
      },
      what,
    );
  }

  /** The body in PATCH chunks of at most `chunk` bytes, each following the Location the last one gave; then the closing PUT. */
  private async putChunked(
    registry: string,
    repository: string,
    up: { digest: string; session: URL; body: Readable | Buffer; chunk: number; size: number },
    what: string,
  ): Promise<void> {
    let session = up.session;
    let offset = 0;
    for await (const piece of chunksOf(up.body, up.chunk)) {
      const res = await this.requestUrl(
        registry,
        repository,
        'pull,push',
        {
          method: 'PATCH',
          url: session.href,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(piece.length),
            'content-range': `${offset}-${offset + piece.length - 1}`,
          },
          body: piece,
        },
        what,
      );
      res.discard();
      if (res.status === 413) {
        throw new RegistryError(
          'status',
          `${what}: the registry refuses request bodies of ${piece.length} bytes (413 Payload Too Large), even as chunks of a ${up.size}-byte blob; pass a smaller --chunk-size (now ${up.chunk} bytes)`,
          { status: 413 },
        );
      }
      expectStatus(res, [202, 204], what);
      offset += piece.length;
      session = uploadLocation(res, what);
    }
    checkPut(await this.putUpload(registry, repository, up.digest, session, 0, Buffer.alloc(0), what), what);
  }

  async putManifest(
    registry: string,
    repository: string,
    selector: string,
    bytes: Buffer,
    mediaType: string,
  ): Promise<string | undefined> {
    const what = `manifest ${registry}/${repository}:${selector}`;
    return this.retrying(what, async () => {
      const res = await this.request(
        registry,
        repository,
        'pull,push',
        {
          method: 'PUT',
          path: `manifests/${selector}`,
          headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
          body: bytes,
        },
        what,
      );
      const text =
        res.status >= 400
          ? (await res.buffer(64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8')
          : (res.discard(), '');
      if (res.status === 400 && /MANIFEST_BLOB_UNKNOWN|BLOB_UNKNOWN|MANIFEST_UNKNOWN/.test(text)) {
        throw new RegistryError(
          'not-found',
          `${what}: the registry refused it because content it references is missing (${registryErrorCode(text)})`,
          { status: 400 },
        );
      }
      if (res.status >= 400)
        throw statusError(res.status, `${what}: ${registryErrorCode(text) || `answered ${res.status}`}`, res.headers);
      expectStatus(res, [201, 200], what);
      return servedDigest(res);
    });
  }

  /** One page of `/v2/_catalog`; `next` is the link of the next page, on the registry's own origin. */
  async catalogPage(
    registry: string,
    pathAndQuery: string,
  ): Promise<{ repositories: string[]; next: string | undefined; status: number; code?: string }> {
    const what = `catalog of ${registry}`;
    const ep = this.endpoint(registry);
    const url = sameOriginUrl(ep, pathAndQuery, what);
    return this.retrying(what, async () => {
      const res = await this.send(ep, 'registry:catalog:*', { method: 'GET', url }, what);
      if (res.status !== 200) {
        // The error code tells a page size the registry refuses (PAGINATION_NUMBER_INVALID) from a catalog it does not offer.
        const text =
          res.status === 400
            ? (await res.buffer(64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8')
            : (res.discard(), '');
        return { repositories: [], next: undefined, status: res.status, code: firstError(text)?.code };
      }
      const body = parseListing(await res.buffer(MAX_LISTING_BYTES), what);
      const repositories = stringsOf(body.repositories, what, 'repositories', isValidRepositoryPath);
      const next = nextPage(res, ep, what);
      return { repositories, next: next && `${next.pathname}${next.search}`, status: 200 };
    });
  }

  /**
   * The OCI 1.1 referrers API: digests of manifests whose `subject` is `digest`,
   * or undefined when the registry does not offer the API. An answer that is not
   * an index of descriptors fails with kind `malformed`.
   */
  async getReferrers(registry: string, repository: string, digest: string): Promise<string[] | undefined> {
    const what = `referrers of ${registry}/${repository}@${digest}`;
    if (this.withoutReferrersApi.has(registry)) return undefined;
    return this.retrying(what, async () => {
      const res = await this.request(
        registry,
        repository,
        'pull',
        { method: 'GET', path: `referrers/${digest}`, headers: { accept: 'application/vnd.oci.image.index.v1+json' } },
        what,
      );
      // A registry with the API answers 200 even when nothing refers to the digest: a 404 means no API, for every repository.
      if (res.status === 404) this.withoutReferrersApi.add(registry);
      if (
        res.status !== 200 ||
        !(res.headers.get('content-type') ?? '').includes('application/vnd.oci.image.index.v1+json')
      ) {
        res.discard();
        return undefined;
      }
      const body = parseListing(await res.buffer(MAX_MANIFEST_BYTES), what);
      if (!Array.isArray(body.manifests))
        throw new RegistryError('malformed', `${what}: the answer is not an index (no "manifests" array)`, {
          status: 200,
        });
      const digests: string[] = [];
      for (const m of body.manifests as unknown[]) {
        const d = typeof m === 'object' && m !== null ? (m as { digest?: unknown }).digest : undefined;
        if (typeof d === 'string' && isValidDigest(d)) digests.push(d);
      }
      return digests;
    });
  }

  /**
   * Every tag of a repository, following `Link` pagination on the registry's
   * own origin; `complete` is false when `maxPages` pages did not reach the end.
   * Entries that are not tags are skipped; an answer that is not a listing,
   * holds more than `maxTags` tags, or links its next page elsewhere fails with
   * kind `malformed`.
   */
  async listTags(
    registry: string,
    repository: string,
    maxPages = 10_000,
    maxTags = maxPages * 1000,
  ): Promise<{ tags: string[]; complete: boolean }> {
    const what = `tags of ${registry}/${repository}`;
    const ep = this.endpoint(registry);
    const tags: string[] = [];
    let next: string | undefined = `${ep.baseUrl}/v2/${endpointRepository(ep, repository)}/tags/list?n=1000`;
    for (let page = 0; next; page++) {
      if (page >= maxPages) return { tags, complete: false };
      const url: string = next;
      const res = await this.retrying(what, () =>
        this.requestUrl(registry, repository, 'pull', { method: 'GET', url }, what),
      );
      if (res.status === 404) {
        res.discard();
        return { tags, complete: true };
      }
      expectStatus(res, [200], what);
      const body = parseListing(await res.buffer(MAX_LISTING_BYTES), what);
      // Distribution answers "tags": null for a repository whose last tag was deleted.
      const listed =
        body.tags === null || body.tags === undefined ? [] : stringsOf(body.tags, what, 'tags', isValidTag);
      // Pages are asked for 1000 at a time: a registry that answers far more at once is not paging, it is flooding.
      if (tags.length + listed.length > maxTags)
        throw new RegistryError('malformed', `${what}: the listing holds more than ${maxTags} tags`, { status: 200 });
      for (const t of listed) tags.push(t);
      next = nextPage(res, ep, what)?.href;
    }
    return { tags, complete: true };
  }

  private async retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    return withRetry(this.retry, op, (err, attempt, delayMs) =>
      this.opts.onRetry?.({ what, attempt, delayMs, reason: printable(err.message, 400) }),
    );
  }

  private request(
    registry: string,
    repository: string,
    access: Access,
    req: { method: HttpRequest['method']; path: string; headers?: Record<string, string>; body?: HttpRequest['body'] },
    what: string,
    extraScope?: string,
  ): Promise<HttpResponse> {
    const ep = this.endpoint(registry);
    const repo = endpointRepository(ep, repository);
    const scope = `repository:${repo}:${access}` + (extraScope ? ` ${extraScope}` : '');
    return this.send(
      ep,
      scope,
      { method: req.method, url: `${ep.baseUrl}/v2/${repo}/${req.path}`, headers: req.headers, body: req.body },
      what,
    );
  }

  private requestUrl(
    registry: string,
    repository: string,
    access: Access,
    req: HttpRequest,
    what: string,
  ): Promise<HttpResponse> {
    const ep = this.endpoint(registry);
    return this.send(ep, `repository:${endpointRepository(ep, repository)}:${access}`, req, what);
  }

  /**
   * Sends with the cached authorization; on 401 answers the challenge once and
   * resends. A second 401 means the credentials are wrong: fail at once, no storm.
   * Credentials go to the registry's own origin only; a 401 from anywhere else
   * (a redirect target, an upload URL the registry handed out) is not answered,
   * since its challenge would name a realm of a stranger's choosing.
   */
  private async send(ep: Endpoint, scope: string, req: HttpRequest, what: string): Promise<HttpResponse> {
    const scopes = scope.split(' ');
    const primary = scopes[0]!;
    const origin = endpointOrigin(ep);
    for (let round = 0; ; round++) {
      const header = this.auth.header(ep.host, primary);
      const res = await this.http.send(req, header ? { header, origin } : undefined, what);
      if (res.status === 401 && originOf(res.url) !== origin) {
        res.discard();
        throw new RegistryError(
          'auth',
          `${ep.host}: ${what} reached ${printable(redactUrl(res.url), 120)}, another origin, which asks for credentials (401); they are only sent to ${origin}`,
          { status: 401 },
        );
      }
      if (res.status !== 401 || round > 0 || (req.body !== undefined && !Buffer.isBuffer(req.body))) {
        if (res.status === 401) {
          res.discard();
          const hint = this.auth.hasCredential(ep.host)
            ? 'the credentials were rejected; check username and password'
            : 'no credentials for this registry; use docker login, --authfile, or --username with --password-stdin';
          throw new RegistryError('auth', `${ep.host}: unauthorized (401) for ${what}: ${hint}`, { status: 401 });
        }
        if (isRetryableStatus(res.status)) {
          res.discard();
          throw statusError(res.status, `${what}: ${ep.host} answered ${res.status}`, res.headers);
        }
        return res;
      }
      res.discard();
      this.auth.invalidate(ep.host, primary);
      await this.auth.answer(ep.host, origin, scopes.join(' '), res.headers.get('www-authenticate'));
    }
  }

  private async cancelUpload(registry: string, repository: string, url: string): Promise<void> {
    try {
      const res = await this.requestUrl(registry, repository, 'pull,push', { method: 'DELETE', url }, 'cancel upload');
      res.discard();
    } catch {
      // An abandoned upload session is garbage-collected by the registry; nothing to report.
    }
  }
}

/** An upload session's `Location` (relative, absolute, on another host, state in its query), resolved against the answer that gave it. */
function uploadLocation(res: HttpResponse, what: string): URL {
  const loc = res.headers.get('location');
  if (!loc)
    throw new RegistryError(
      'status',
      `${what}: registry answered ${res.status} for an upload without a Location header`,
      { status: res.status },
    );
  try {
    const url = new URL(loc, res.url);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // refused below
  }
  throw new RegistryError(
    'malformed',
    `${what}: the upload Location does not parse as an http(s) URL ("${printable(loc, 100)}")`,
    { status: res.status },
  );
}

/** The closing PUT's answer: 201, or why not. */
function checkPut(res: HttpResponse, what: string): void {
  res.discard();
  if (res.status === 400) {
    // The bytes were hashed as they left; a rejection means they changed on the way.
    throw new RegistryError('digest', `${what}: the registry rejected the content as not matching its digest (400)`, {
      status: 400,
      retryable: true,
    });
  }
  expectStatus(res, [201], what);
}

/** `source` cut into pieces of exactly `size` bytes (the last one shorter); at most one piece is held. */
async function* chunksOf(source: Readable | Buffer, size: number): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(source)) {
    for (let i = 0; i < source.length; i += size) yield source.subarray(i, i + size);
    return;
  }
  let parts: Buffer[] = [];
  let held = 0;
  for await (const c of source) {
    let buf = c as Buffer;
    while (held + buf.length >= size) {
      const take = size - held;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      held = 0;
      buf = buf.subarray(take);
    }
    if (buf.length > 0) {
      parts.push(buf);
      held += buf.length;
    }
  }
  if (held > 0) yield Buffer.concat(parts);
}

function expectStatus(res: HttpResponse, ok: number[], what: string): void {
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

function statusError(status: number, message: string, headers: HttpResponse['headers']): RegistryError {
  return new RegistryError('status', message, {
    status,
    retryable: isRetryableStatus(status),
    retryAfterMs: parseRetryAfter(headers.get('retry-after')),
  });
}

/** `errors[0]` of a distribution-spec error body, or undefined when the body is not one. */
function firstError(text: string): { code?: string; message?: string } | undefined {
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
function registryErrorCode(text: string): string {
  const e = firstError(text);
  return e ? printable([e.code, e.message].filter((x) => x !== undefined && x !== '').join(': '), 200) : '';
}

/** Listings (tags, catalog) are small JSON documents; this bounds what one page may cost. */
const MAX_LISTING_BYTES = 16 * 1024 * 1024;

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** The media type a response names, when it is a valid `type/subtype`: anything else is not carried or printed. */
function servedMediaType(res: HttpResponse): string | undefined {
  const value = res.headers.get('content-type')?.split(';')[0]?.trim();
  return isValidMediaType(value) ? value : undefined;
}

function servedDigest(res: HttpResponse): string | undefined {
  const value = res.headers.get('docker-content-digest')?.trim();
  return value && isValidDigest(value) ? value : undefined;
}

/** A JSON object, or a `malformed` error naming what was asked. */
function parseListing(bytes: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseBoundedJson(bytes);
  } catch {
    throw new RegistryError('malformed', `${what}: the registry answered something that is not JSON`, { status: 200 });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new RegistryError('malformed', `${what}: the registry answered JSON that is not an object`, { status: 200 });
  return doc as Record<string, unknown>;
}

/** The strings of a JSON array that pass `valid`; not an array is `malformed`. */
function stringsOf(value: unknown, what: string, field: string, valid: (s: string) => boolean): string[] {
  if (!Array.isArray(value))
    throw new RegistryError('malformed', `${what}: "${field}" is not an array`, { status: 200 });
  const out: string[] = [];
  for (const v of value as unknown[]) if (typeof v === 'string' && valid(v)) out.push(v);
  return out;
}

/** `target` resolved against the registry, refused when it leaves the registry's origin. */
function sameOriginUrl(ep: Endpoint, target: string, what: string, base: string = ep.baseUrl): string {
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

/** The `rel="next"` page of a paginated listing, on the registry's own origin. */
function nextPage(res: HttpResponse, ep: Endpoint, what: string): URL | undefined {
  const link = res.headers.get('link');
  const target = link ? /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
  if (target === undefined) return undefined;
  // A relative link is relative to the page it came with.
  return new URL(sameOriginUrl(ep, target, what, originOf(res.url) ? res.url : ep.baseUrl));
}
