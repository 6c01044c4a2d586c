import type { Readable } from 'node:stream';
import { DigestMismatchError, verified } from '../oci/digest.js';
import type { Repository } from '../registry/repository.js';
import { RegistryError } from '../registry/errors.js';
import { mapSettled } from '../util/pool.js';
import { readBlob, type BlobLocation } from '../bundle/blob-ranges.js';
import type { BlobPart } from '../bundle/format.js';
import { joinParts, locateParts } from './split-blobs.js';
import { mountAll } from './blob-phase.js';
import type { BlobState, ImportRun } from './import-run.js';

/** One upload: a blob into the first repository lacking it, or a part of a split blob staged into `stage`. */
interface UploadJob {
  digest: string;
  size: number;
  /** The config or layer whose images fail if this upload fails. */
  for: string;
  stage?: Repository;
  /** A fresh, verified read of the bytes (one per attempt). */
  open: (onBytes?: (n: number) => void) => Readable;
}

/**
 * Phase 2, planned: one upload per blob still missing that this volume can
 * complete (a blob cut across volumes may stage its parts instead), a failure
 * for a blob the tar lacks; then the work is announced.
 */
export async function planUploads(run: ImportRun, blobs: BlobState, incomplete: number): Promise<UploadJob[]> {
  const { plan, index, path } = run;
  const jobs: UploadJob[] = [];
  for (const digest of blobs.needs.keys()) {
    if (blobs.waiting.has(digest)) continue;
    const size = plan.sizes.get(digest) ?? 0;
    const parts = plan.volume?.parts.get(digest);
    if (parts) {
      jobs.push(...(await splitBlobJobs(run, blobs, digest, parts)));
      continue;
    }
    const at = index.blobs.get(digest);
    const holder = blobs.holder.get(digest);
    if (at) jobs.push({ digest, size, for: digest, open: (onBytes) => readBlob(path, digest, at, onBytes) });
    else if (holder) blobs.failed.set(digest, { message: `could not be mounted from ${holder}`, cause: 'registry' });
    else blobs.failed.set(digest, { message: 'is missing from the bundle', cause: 'bundle' });
  }
  const pending = [...blobs.needs].filter(([d]) => !blobs.waiting.has(d)).reduce((s, [, r]) => s + r.length, 0);
  run.ev.planned?.({
    images: plan.images.length,
    complete: plan.images.length - incomplete,
    uploads: jobs.length,
    uploadBytes: jobs.reduce((s, j) => s + j.size, 0),
    mounts: run.result.mounted + pending - jobs.filter((j) => !j.stage).length,
  });
  return jobs;
}

/** Phase 2, done: every upload in parallel; a blob that fails fails its images, named in `blobs.failed`. */
export async function uploadAll(run: ImportRun, blobs: BlobState, jobs: UploadJob[]): Promise<void> {
  // Largest first, so a big layer does not start last and run alone.
  jobs.sort((a, b) => b.size - a.size);
  if (jobs.length > 0) run.result.readBundle = true;
  const uploaded = await mapSettled(jobs, run.concurrency, (job) => runUpload(run, blobs, job));
  uploaded.forEach((r, i) => {
    if (r.ok) return;
    const job = jobs[i]!;
    const err = r.error;
    // Only our own hash of the bundle's bytes convicts the bundle; anything else is the registry's side.
    const damaged = err instanceof DigestMismatchError;
    if (!damaged && !(err instanceof RegistryError)) throw err;
    const what = job.stage ? `part ${job.digest} ` : '';
    const message = damaged
      ? `${what}is damaged in the bundle (${(err as Error).message})`
      : `${what}could not be uploaded: ${(err as Error).message}`;
    blobs.failed.set(job.for, { message, cause: damaged ? 'bundle' : 'registry' });
    run.ev.blobFailed?.(job.for, message);
  });
}

/** One job: a part into its staging repository, or a blob into the first repository lacking it and then into the others. */
async function runUpload(run: ImportRun, blobs: BlobState, job: UploadJob): Promise<void> {
  const { result, ev } = run;
  if (job.stage) {
    await upload(job.stage, job.digest, job.size, () => job.open(ev.bytes));
    result.uploaded.blobs++;
    result.uploaded.bytes += job.size;
    return;
  }
  const digest = job.digest;
  const first = blobs.needs.get(digest)![0]!;
  await upload(first, digest, job.size, () => job.open(ev.bytes));
  result.uploaded.blobs++;
  result.uploaded.bytes += job.size;
  blobs.needs.set(digest, blobs.needs.get(digest)!.slice(1));
  await mountAll(run, blobs, digest, first.name);
  // A registry that refuses mounts (or answers one with an upload session) gets the bytes again: an upload, counted as one.
  for (const repo of blobs.needs.get(digest) ?? []) {
    await upload(repo, digest, job.size, () => job.open());
    result.uploaded.blobs++;
    result.uploaded.bytes += job.size;
  }
  blobs.needs.delete(digest);
}

/**
 * The uploads a blob cut across volumes needs in this run: the whole blob when
 * every part is in this volume or already staged in the registry; otherwise the
 * parts this volume carries, staged for a later run, while its images wait.
 */
async function splitBlobJobs(
  run: ImportRun,
  blobs: BlobState,
  digest: string,
  parts: BlobPart[],
): Promise<UploadJob[]> {
  const { plan, path } = run;
  // The same repository in every run: the first one the bundle maps this blob to.
  const stage = run.repository(plan.blobRepos.get(digest)![0]!);
  const sources = await locateParts(parts, plan.volume!.index, run.index.blobs, (d) => stage.hasBlob(d));
  const read = {
    local: (p: BlobPart, at: BlobLocation) => readBlob(path, p.digest, at),
    staged: (p: BlobPart) => readStaged(stage, p),
  };
  if (sources.waitingFor.length === 0) {
    const size = plan.sizes.get(digest) ?? 0;
    return [
      { digest, size, for: digest, open: (onBytes) => joinParts({ digest, size }, parts, sources, read, onBytes) },
    ];
  }
  blobs.waiting.set(digest, sources.waitingFor);
  const ahead = [...sources.local].filter(([d]) => !sources.staged.has(d));
  run.result.staged.push({ digest, parts: ahead.length, waitingFor: sources.waitingFor });
  run.ev.partsStaged?.(digest, ahead.length, sources.waitingFor);
  return ahead.map(([d, at]) => ({
    digest: d,
    size: at.size,
    for: digest,
    stage,
    open: (onBytes) => readBlob(path, d, at, onBytes),
  }));
}

/** A part staged in the registry by an earlier run, read back and checked against its digest. */
async function* readStaged(stage: Repository, p: BlobPart): AsyncGenerator<Buffer> {
  const { body } = await stage.openBlob(p.digest);
  try {
    for await (const chunk of verified(body, p)) yield chunk as Buffer;
  } catch (err) {
    // Wrong bytes from the registry are the registry's fault, not the bundle's.
    if (err instanceof DigestMismatchError)
      throw new RegistryError(
        'status',
        `part ${p.digest} staged in ${stage} is corrupt (${err.message}); delete it there and import its volume again`,
      );
    throw err;
  }
}

/**
 * One blob upload from a fresh ranged read per attempt. A mismatch between the
 * bytes and the digest surfaces as the stream's error, which aborts the request
 * before it completes.
 */
async function upload(repo: Repository, digest: string, size: number, open: () => Readable): Promise<void> {
  let mismatch: DigestMismatchError | undefined;
  try {
    await repo.uploadBlob(digest, size, () => {
      // The bundle's bytes do not change between attempts: stop retrying a damaged blob.
      if (mismatch) throw mismatch;
      const body = open();
      body.on('error', (err) => {
        if (err instanceof DigestMismatchError) mismatch = err;
      });
      return body;
    });
  } catch (err) {
    throw mismatch ?? err;
  }
}
