/**
 * Parallel pullers for the serve benchmark: each one copies every image of the set, one after the
 * other, with `skopeo copy --all` into its own `dir:` folders, as a node pulling the whole cluster
 * would. A fast wrong answer is no result: every copy's top manifest must hash to the digest the
 * bundle records, or the run aborts.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dirBytes } from './bench-measure.js';
import { run } from './process.js';

/** One tagged image as both servers answer it: the repository import and serve both name it by. */
export interface PulledImage {
  repository: string;
  tag: string;
  digest: string;
}

export interface PullResult {
  seconds: number;
  /** Bytes written by every puller together: the blobs and manifests they fetched. */
  bytes: number;
}

async function pullOne(host: string, img: PulledImage, dest: string): Promise<void> {
  await run('skopeo', [
    '--insecure-policy',
    'copy',
    '--quiet',
    '--all',
    '--src-tls-verify=false',
    `docker://${host}/${img.repository}:${img.tag}`,
    `dir:${dest}`,
  ]);
  const top = await readFile(join(dest, 'manifest.json'));
  const got = `sha256:${createHash('sha256').update(top).digest('hex')}`;
  if (got !== img.digest)
    throw new Error(`DIGEST MISMATCH pulling ${host}/${img.repository}:${img.tag}: got ${got}, want ${img.digest}`);
}

/** `clients` pullers at once, each copying every image into `dir/puller-N/`; the folder is emptied after. */
export async function pullInParallel(
  host: string,
  images: PulledImage[],
  clients: number,
  dir: string,
): Promise<PullResult> {
  await rm(dir, { recursive: true, force: true });
  const puller = async (n: number) => {
    await mkdir(join(dir, `puller-${n}`), { recursive: true });
    for (const [i, img] of images.entries()) await pullOne(host, img, join(dir, `puller-${n}`, `image-${i}`));
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: clients }, (_, n) => puller(n)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = await dirBytes(dir);
  await rm(dir, { recursive: true, force: true });
  return { seconds, bytes };
}
