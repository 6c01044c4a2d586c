import { createHash } from 'node:crypto';
import { isValidMediaType } from '../oci/descriptor.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { MANIFEST_ACCEPT } from '../oci/media-types.js';
import { isValidDigest } from '../reference/reference.js';
import { RegistryError } from './errors.js';
import type { HttpResponse } from './http.js';
import type { Access, Repository } from './repository.js';
import { errorSummary, expectStatus, readErrorText, statusError } from './status.js';

export interface FetchedManifest {
  bytes: Buffer;
  /** Content-Type as served (the document's own mediaType may be absent). */
  mediaType: string | undefined;
  /** sha256 of the bytes, computed here: the registry's header is only a claim. */
  digest: string;
}

export interface ManifestHead {
  digest: string | undefined;
  mediaType: string | undefined;
}

/**
 * Fetches a manifest or index by tag or digest, checking the digest when
 * pinned. `maxBytes` is what the caller expects at most (a descriptor's size):
 * a longer body is refused as it arrives, never held.
 */
export async function fetchManifest(
  repo: Repository,
  selector: string,
  maxBytes = MAX_MANIFEST_BYTES,
): Promise<FetchedManifest> {
  const what = `manifest ${repo}:${selector}`;
  // Manifests are stored and checked by sha256 throughout; another algorithm could not be verified here.
  if (isPinned(selector) && !selector.startsWith('sha256:'))
    throw new RegistryError('unsupported', `${what}: only sha256 manifest digests are supported`);
  return repo.retrying(what, async () => {
    const res = await repo.send(
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
    checkManifestDigest(res, selector, digest, what);
    return { bytes, mediaType: servedMediaType(res), digest };
  });
}

const isPinned = (selector: string) => selector.includes(':');

/**
 * Bytes asked for by digest must have that digest. By tag, the registry's own
 * digest header is the only reference: bytes that disagree with it were
 * damaged on the way (or the registry is broken). Either is worth another try.
 */
function checkManifestDigest(res: HttpResponse, selector: string, digest: string, what: string): void {
  if (isPinned(selector)) {
    if (selector !== digest)
      throw new RegistryError('digest', `${what}: the registry served content with digest ${digest}`, {
        status: 200,
        retryable: true,
      });
    return;
  }
  const claimed = res.headers.get('docker-content-digest');
  if (claimed && /^sha256:[a-f0-9]{64}$/.test(claimed) && claimed !== digest) {
    throw new RegistryError('digest', `${what}: content has digest ${digest} but the registry announced ${claimed}`, {
      status: 200,
      retryable: true,
    });
  }
}

/** HEAD of a manifest: its digest, or undefined when absent. */
export async function headManifest(
  repo: Repository,
  selector: string,
  access: Access = 'pull',
): Promise<ManifestHead | undefined> {
  const what = `manifest ${repo}:${selector}`;
  const head = await repo.retrying(what, async () => {
    const res = await repo.send(
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
    const got = await fetchManifest(repo, selector);
    return { digest: got.digest, mediaType: got.mediaType ?? head.mediaType };
  } catch (err) {
    if (err instanceof RegistryError && err.kind === 'not-found') return undefined;
    throw err;
  }
}

/**
 * PUT of a manifest under a tag or its digest; the digest the registry
 * answers with, when it names a valid one. A 400 naming missing content is
 * `not-found` (a blob or child manifest was not pushed first).
 */
export async function putManifest(
  repo: Repository,
  selector: string,
  bytes: Buffer,
  mediaType: string,
): Promise<string | undefined> {
  const what = `manifest ${repo}:${selector}`;
  return repo.retrying(what, async () => {
    const res = await repo.send(
      'pull,push',
      {
        method: 'PUT',
        path: `manifests/${selector}`,
        headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
        body: bytes,
      },
      what,
    );
    if (res.status < 400) {
      res.discard();
      expectStatus(res, [201, 200], what);
      return servedDigest(res);
    }
    const text = await readErrorText(res);
    if (res.status === 400 && /MANIFEST_BLOB_UNKNOWN|BLOB_UNKNOWN|MANIFEST_UNKNOWN/.test(text)) {
      throw new RegistryError(
        'not-found',
        `${what}: the registry refused it because content it references is missing (${errorSummary(text)})`,
        { status: 400 },
      );
    }
    throw statusError(res.status, `${what}: ${errorSummary(text) || `answered ${res.status}`}`, res.headers);
  });
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
