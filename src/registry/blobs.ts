import type { Readable } from 'node:stream';
import { RegistryError } from './errors.js';
import type { Repository } from './repository.js';
import { expectStatus } from './status.js';

export interface OpenedBlob {
  body: Readable;
  /** The registry's Content-Length, when it sent one: a claim the caller checks against the descriptor. */
  size: number | undefined;
}

/**
 * Opens a blob for download, once and without retries: the caller streams and
 * verifies it, and retries the whole transfer (headers or body failing alike)
 * within one budget.
 */
export async function openBlob(repo: Repository, digest: string): Promise<OpenedBlob> {
  const what = `blob ${digest} of ${repo}`;
  const res = await repo.send('pull', { method: 'GET', path: `blobs/${digest}` }, what);
  if (res.status === 404) {
    res.discard();
    throw new RegistryError('not-found', `${what}: not found (404)`, { status: 404 });
  }
  expectStatus(res, [200], what);
  const len = res.headers.get('content-length');
  return { body: res.body, size: len !== null ? Number(len) : undefined };
}

/**
 * Whether the repository holds a blob. Asked with push access: it is asked
 * before an upload, and one token then serves both.
 */
export async function hasBlob(repo: Repository, digest: string): Promise<boolean> {
  const what = `blob ${digest} in ${repo}`;
  return repo.retrying(what, async () => {
    const res = await repo.send('pull,push', { method: 'HEAD', path: `blobs/${digest}` }, what);
    res.discard();
    if (res.status === 404) return false;
    expectStatus(res, [200], what);
    return true;
  });
}
