/**
 * The registry's own ceiling: every config and layer of a set fetched with plain parallel HTTP
 * GETs (Node's client, kept-alive connections) and thrown away. No hashing, no writing: what the
 * registry can serve on this machine, which shares its cores with whoever fetches. Export's
 * throughput is reported as a share of it.
 *
 * With `into`, the same GETs write each blob to a file of its own there and the time includes
 * flushing that filesystem (`sync -f`): the least any tool that keeps the bytes on this disk,
 * durably, can take, still without hashing them.
 */
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { mapLimit } from './many-pool.js';
import { run } from './process.js';
import { MediaTypes } from './samples.js';

interface BlobRef {
  repository: string;
  digest: string;
}

const ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest].join(
  ', ',
);

function get(
  agent: http.Agent,
  host: string,
  path: string,
  keep: boolean,
  file?: string,
): Promise<{ status: number; body: Buffer; bytes: number }> {
  const [hostname, port] = host.split(':');
  return new Promise((resolve, reject) => {
    const req = http.get({ host: hostname, port: Number(port), path, agent, headers: { accept: ACCEPT } }, (res) => {
      const parts: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (keep) parts.push(c);
      });
      const done = () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), bytes });
      if (file) pipeline(res, createWriteStream(file)).then(done, reject);
      else {
        res.on('end', done);
        res.on('error', reject);
      }
    });
    req.on('error', reject);
  });
}

/** Every config and layer reachable from the images' tags, each once. */
async function blobsOf(agent: http.Agent, host: string, images: Array<{ repository: string; tag: string }>) {
  const found = new Map<string, BlobRef>();
  const walk = async (repository: string, selector: string): Promise<void> => {
    const { status, body } = await get(agent, host, `/v2/${repository}/manifests/${selector}`, true);
    if (status !== 200) throw new Error(`ceiling: ${repository}:${selector} answered ${status}`);
    const doc = JSON.parse(body.toString('utf8')) as {
      manifests?: Array<{ digest: string }>;
      config?: { digest: string };
      layers?: Array<{ digest: string }>;
    };
    for (const m of doc.manifests ?? []) await walk(repository, m.digest);
    for (const d of [doc.config, ...(doc.layers ?? [])])
      if (d && !found.has(d.digest)) found.set(d.digest, { repository, digest: d.digest });
  };
  for (const img of images) await walk(img.repository, img.tag);
  return [...found.values()];
}

/** Wall time and bytes of fetching every blob of the set, `parallel` at once (into files in `into`, flushed). */
export async function registryCeiling(
  host: string,
  images: Array<{ repository: string; tag: string }>,
  parallel: number,
  into?: string,
): Promise<{ seconds: number; bytes: number; blobs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel });
  try {
    const blobs = await blobsOf(agent, host, images);
    const started = process.hrtime.bigint();
    const sizes = await mapLimit(blobs, parallel, async (b) => {
      const file = into ? join(into, b.digest.replace(':', '-')) : undefined;
      const { status, bytes } = await get(agent, host, `/v2/${b.repository}/blobs/${b.digest}`, false, file);
      if (status !== 200) throw new Error(`ceiling: blob ${b.digest} answered ${status}`);
      return bytes;
    });
    if (into) await run('sync', ['-f', into]);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { seconds, bytes: sizes.reduce((s, n) => s + n, 0), blobs: blobs.length };
  } finally {
    agent.destroy();
  }
}
