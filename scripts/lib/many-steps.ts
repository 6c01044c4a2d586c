/**
 * The steps of the many-images benchmark, each a command measured under GNU time with the
 * registry requests it caused counted by a proxy in front of the registry it talks to.
 */
import http from 'node:http';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { measure, type Sample } from './bench-measure.js';
import type { CountingProxy } from './many-proxy.js';
import type { ManyImage } from './many-images.js';
import { mapLimit } from './many-pool.js';
import { MediaTypes } from './samples.js';

export interface StepResult {
  seconds: number;
  cpuSeconds: number;
  rssMiB: number;
  requests: number;
  byMethod: Record<string, number>;
}

/** `cmd` measured, with the requests `proxy` saw while it ran. */
export async function measured(cmd: string[], tmp: string, proxy?: CountingProxy): Promise<StepResult> {
  proxy?.reset();
  const s: Sample = await measure(cmd, tmp);
  const c = proxy?.counts() ?? { total: 0, byMethod: {} };
  return { seconds: s.seconds, cpuSeconds: s.cpuSeconds, rssMiB: s.rssMiB, requests: c.total, byMethod: c.byMethod };
}

const ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest].join(
  ', ',
);

function headDigest(host: string, repository: string, tag: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const [hostname, port] = host.split(':');
    const req = http.request(
      { method: 'HEAD', host: hostname, port: Number(port), path: `/v2/${repository}/manifests/${tag}` },
      (res) => {
        res.resume();
        const digest = res.headers['docker-content-digest'];
        resolve(res.statusCode === 200 && typeof digest === 'string' ? digest : undefined);
      },
    );
    req.setHeader('accept', ACCEPT);
    req.on('error', reject);
    req.end();
  });
}

/** Aborts unless `host` serves every image of the set at `prefix/repository:tag` with its digest. */
export async function expectServed(host: string, images: ManyImage[], what: string, prefix = ''): Promise<void> {
  const got = await mapLimit(images, 8, (img) => headDigest(host, `${prefix}${img.repository}`, img.tag));
  const wrong = images.filter((img, i) => got[i] !== img.digest);
  if (wrong.length > 0)
    throw new Error(
      `DIGEST MISMATCH after ${what}: ${wrong.length} of ${images.length} images, first ${wrong[0]!.repository}:${wrong[0]!.tag} = ${got[images.indexOf(wrong[0]!)] ?? 'nothing'}`,
    );
}

/** The image list for `export -f`, and skopeo sync's YAML source list of the same images. */
export async function writeLists(
  dir: string,
  host: string,
  images: ManyImage[],
): Promise<{ list: string; yaml: string }> {
  await mkdir(dir, { recursive: true });
  const list = join(dir, 'images.txt');
  const yaml = join(dir, 'sync.yaml');
  await writeFile(list, images.map((i) => `${host}/${i.repository}:${i.tag}\n`).join(''));
  const entries = images.map((i) => `    ${i.repository}: [${i.tag}]\n`).join('');
  await writeFile(yaml, `${host}:\n  tls-verify: false\n  images:\n${entries}`);
  return { list, yaml };
}

/** skopeo sync, one process: registry → dir: folders (export), dir: folders → registry (import). */
export const skopeoSync = {
  export: (yaml: string, dir: string) => [
    'skopeo',
    '--insecure-policy',
    'sync',
    '--all',
    '--preserve-digests',
    '--src',
    'yaml',
    '--dest',
    'dir',
    yaml,
    dir,
  ],
  import: (dir: string, host: string) => [
    'skopeo',
    '--insecure-policy',
    'sync',
    '--all',
    '--preserve-digests',
    '--dest-tls-verify=false',
    '--src',
    'dir',
    '--dest',
    'docker',
    dir,
    `${host}/many`,
  ],
};

export async function emptyDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}
