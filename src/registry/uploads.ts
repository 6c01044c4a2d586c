import type { Readable } from 'node:stream';
import { printable } from '../util/text.js';
import { RegistryError } from './errors.js';
import type { HttpResponse } from './http.js';
import type { Repository } from './repository.js';
import { errorSummary, expectStatus, readErrorText } from './status.js';

/** The chunk size used when a registry refuses a monolithic upload and no --chunk-size was given. */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

/** One blob on its way up: what it is, where its session is, and the bytes to send. */
interface Upload {
  digest: string;
  size: number;
  session: URL;
  body: Readable | Buffer;
}

/**
 * Upload: POST opens the session (and settles auth before any body byte is
 * sent), then one PUT streams the body with `?digest=`, so the registry checks
 * the content against the digest before it becomes visible. With a chunk
 * size, or once the registry refused a monolithic body as too large (413),
 * the body goes in PATCH chunks of at most that size, and the PUT closes it.
 * `body` is called once per attempt: a stream cannot be sent twice.
 */
export async function uploadBlob(
  repo: Repository,
  digest: string,
  size: number,
  body: () => Readable | Buffer,
): Promise<void> {
  const what = `upload of ${digest} to ${repo}`;
  await repo.retrying(what, async () => {
    const chunk = repo.chunkSize ?? (repo.traits.needsChunks ? DEFAULT_CHUNK_SIZE : undefined);
    const session = await openUpload(repo, what);
    if (chunk !== undefined && size > chunk)
      return putChunked(repo, { digest, size, session, body: body() }, chunk, what);
    const whole = body();
    const res = await putUpload(repo, { digest, size, session, body: whole }, what);
    if (res.status !== 413) return checkPut(res, what);
    res.discard();
    if (!Buffer.isBuffer(whole)) whole.destroy();
    // Too large for one request: this registry takes chunks only.
    await cancelUpload(repo, session.href);
    repo.traits.needsChunks = true;
    const again = await openUpload(repo, what);
    return putChunked(repo, { digest, size, session: again, body: body() }, chunk ?? DEFAULT_CHUNK_SIZE, what);
  });
}

/** POST of a new upload session: its Location, resolved against the answer that gave it. */
async function openUpload(repo: Repository, what: string): Promise<URL> {
  const start = await repo.send(
    'pull,push',
    { method: 'POST', path: 'blobs/uploads/', headers: { 'content-length': '0' } },
    what,
  );
  start.discard();
  expectStatus(start, [202], what);
  return uploadLocation(start, what);
}

/** The closing PUT of an upload session with `?digest=`, carrying the body (or nothing after chunks). */
function putUpload(repo: Repository, up: Upload, what: string): Promise<HttpResponse> {
  const put = new URL(up.session.href);
  put.searchParams.set('digest', up.digest);
  return repo.sendTo(
    'pull,push',
    {
      method: 'PUT',
      url: put.href,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(up.size) },
      body: up.body,
    },
    what,
  );
}

/** The body in PATCH chunks of at most `chunk` bytes, each following the Location the last one gave; then the closing PUT. */
async function putChunked(repo: Repository, up: Upload, chunk: number, what: string): Promise<void> {
  let session = up.session;
  let offset = 0;
  for await (const piece of chunksOf(up.body, chunk)) {
    const res = await repo.sendTo('pull,push', patchOf(session, offset, piece), what);
    res.discard();
    if (res.status === 413) {
      throw new RegistryError(
        'status',
        `${what}: the registry refuses request bodies of ${piece.length} bytes (413 Payload Too Large), even as chunks of a ${up.size}-byte blob; pass a smaller --chunk-size (now ${chunk} bytes)`,
        { status: 413 },
      );
    }
    expectStatus(res, [202, 204], what);
    offset += piece.length;
    session = uploadLocation(res, what);
  }
  const closing = { digest: up.digest, size: 0, session, body: Buffer.alloc(0) };
  checkPut(await putUpload(repo, closing, what), what);
}

/** The PATCH that sends `piece` at `offset` of the session. */
function patchOf(session: URL, offset: number, piece: Buffer) {
  return {
    method: 'PATCH' as const,
    url: session.href,
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(piece.length),
      'content-range': `${offset}-${offset + piece.length - 1}`,
    },
    body: piece,
  };
}

/**
 * Cross-repository mount of a blob `fromRepository` (of the same registry)
 * holds. Returns true when mounted; false when the registry declined (it then
 * opened an upload session, which is cancelled).
 */
export async function mountBlob(repo: Repository, digest: string, fromRepository: string): Promise<boolean> {
  const what = `mount of ${digest} into ${repo}`;
  const from = repo.pathOf(fromRepository);
  return repo.retrying(what, async () => {
    const res = await repo.send(
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
      if (loc) await cancelUpload(repo, new URL(loc, repo.endpoint.baseUrl).href);
      return false;
    }
    expectStatus(res, [201, 202], what);
    return false;
  });
}

/**
 * Whether the registry takes pushes into the repository: an upload session is
 * opened and cancelled. Returns why not when it answers 404 (`NAME_UNKNOWN`:
 * the repository must exist first) or 403 (a project that does not exist, or
 * no push right); undefined otherwise, and for any other answer (the push
 * itself then says what is wrong).
 */
export async function probePush(repo: Repository): Promise<string | undefined> {
  const what = `push to ${repo}`;
  return repo.retrying(what, async () => {
    const res = await repo.send(
      'pull,push',
      { method: 'POST', path: 'blobs/uploads/', headers: { 'content-length': '0' } },
      what,
    );
    if (res.status === 404 || res.status === 403) {
      const summary = errorSummary(await readErrorText(res));
      return `${res.status}${summary ? ` ${summary}` : ''}`;
    }
    res.discard();
    const loc = res.headers.get('location');
    if (res.status === 202 && loc) await cancelUpload(repo, new URL(loc, res.url || repo.endpoint.baseUrl).href);
    return undefined;
  });
}

/** DELETE of an upload session, best effort. */
async function cancelUpload(repo: Repository, url: string): Promise<void> {
  try {
    const res = await repo.sendTo('pull,push', { method: 'DELETE', url }, 'cancel upload');
    res.discard();
  } catch {
    // An abandoned upload session is garbage-collected by the registry; nothing to report.
  }
}

/** An upload session's `Location` (relative, absolute, on another host, state in its query), resolved against the answer that gave it. */
function uploadLocation(res: HttpResponse, what: string): URL {
  const loc = res.headers.get('location');
  if (!loc)
    throw new RegistryError(
      'status',
      `${what}: registry answered ${res.status} for an upload without a Location header`,
      {
        status: res.status,
      },
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
