/**
 * The registry's ingest ceiling: every blob and manifest of the set put into a fresh registry by
 * plain parallel requests (scripts/bench/plain-http.ts), with none of the tool's logic (no plan,
 * no existence checks, no hashing, no retries). The bytes come from the file the read ceiling to
 * disk wrote, read once beforehand so they are in the page cache, as the bundle is when import
 * reads it. The registry API's least work for the set:
 *
 *  1. each distinct config and layer uploaded once, monolithic (POST opens the session, one PUT
 *     with `?digest=` carries the body), into the first repository that uses it, largest first;
 *  2. a cross-repository mount (one POST) into every other repository that uses it;
 *  3. the manifests, children (by digest) before the indexes that list them, the images' own
 *     ones by tag.
 *
 * Each stage runs `parallel` requests at once and starts when the one before has finished, as the
 * registry requires (a manifest is refused until its blobs, and an index until its children,
 * are there). Import's throughput is reported as a share of this.
 */
import { createReadStream } from 'node:fs';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { mapLimit } from '../lib/many-pool.js';
import { expectStatus, plainRequest } from './plain-http.js';
import type { CeilingResult, SetFile } from './read-ceiling.js';
import type { SetContent } from './set-content.js';

export interface IngestResult extends CeilingResult {
  /** Blob and manifest bytes sent, each once. */
  bytes: number;
  uploads: number;
  mounts: number;
  manifests: number;
}

/** Every blob and manifest of `content` into the registry at `host`, which should hold none of them. */
export async function ingestCeiling(
  host: string,
  content: SetContent,
  source: SetFile,
  parallel: number,
): Promise<IngestResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel });
  try {
    const started = process.hrtime.bigint();
    const byLargest = [...content.blobs].sort((a, b) => b.size - a.size);
    await mapLimit(byLargest, parallel, async (b) => {
      const at = source.at.get(b.digest);
      if (at === undefined) throw new Error(`ingest ceiling: ${b.digest} is not in ${source.path}`);
      const body = () => createReadStream(source.path, { start: at, end: at + b.size - 1, highWaterMark: 1 << 20 });
      await upload(agent, host, b.repositories[0]!, b.digest, b.size, body);
    });
    const mounts = content.blobs.flatMap((b) => b.repositories.slice(1).map((to) => ({ b, to })));
    await mapLimit(mounts, parallel, ({ b, to }) => mount(agent, host, to, b.digest, b.repositories[0]!));
    const depths = [...new Set(content.manifests.map((m) => m.depth))].sort((a, b) => b - a);
    for (const depth of depths)
      await mapLimit(
        content.manifests.filter((m) => m.depth === depth),
        parallel,
        async (m) => {
          const path = `/v2/${m.repository}/manifests/${m.tag ?? m.digest}`;
          const headers = { 'content-type': m.mediaType, 'content-length': String(m.bytes.length) };
          const res = await plainRequest(agent, host, { method: 'PUT', path, headers, body: m.bytes });
          expectStatus(res, [201], `PUT ${path}`);
        },
      );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const manifestBytes = content.manifests.reduce((s, m) => s + m.bytes.length, 0);
    return {
      seconds,
      bytes: content.blobBytes + manifestBytes,
      blobs: content.blobs.length,
      uploads: content.blobs.length,
      mounts: mounts.length,
      manifests: content.manifests.length,
    };
  } finally {
    agent.destroy();
  }
}

/** POST for a session, then one PUT of the whole body with its digest. */
async function upload(
  agent: http.Agent,
  host: string,
  repository: string,
  digest: string,
  size: number,
  body: () => Readable,
): Promise<void> {
  const what = `upload of ${digest} to ${repository}`;
  const start = await plainRequest(agent, host, {
    method: 'POST',
    path: `/v2/${repository}/blobs/uploads/`,
    headers: { 'content-length': '0' },
  });
  expectStatus(start, [202], what);
  const location = start.headers.location;
  if (!location) throw new Error(`${what}: the registry gave no Location`);
  const put = new URL(location, `http://${host}`);
  if (put.host !== host) throw new Error(`${what}: the registry sent the upload to ${put.host}`);
  put.searchParams.set('digest', digest);
  const res = await plainRequest(agent, host, {
    method: 'PUT',
    path: put.href,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: body(),
  });
  expectStatus(res, [201], what);
}

/** One POST that mounts `digest` from `from` into `repository`. */
async function mount(agent: http.Agent, host: string, repository: string, digest: string, from: string): Promise<void> {
  const path = `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
  const res = await plainRequest(agent, host, { method: 'POST', path, headers: { 'content-length': '0' } });
  expectStatus(res, [201], `mount of ${digest} into ${repository}`);
}
