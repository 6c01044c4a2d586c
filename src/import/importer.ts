import type { Readable } from 'node:stream';
import { printable } from '../util/text.js';
import { DigestMismatchError, verified } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import type { RegistryClient } from '../registry/client.js';
import type { Repository } from '../registry/repository.js';
import { RegistryError } from '../registry/errors.js';
import { mapSettled } from '../util/pool.js';
import { readBlob, readSmallBlob, type BlobLocation } from '../bundle/blob-ranges.js';
import { indexBundle, type BundleIndex } from './structure.js';
import type { BlobPart } from '../bundle/format.js';
import { joinParts, locateParts } from './split-blobs.js';
import type { ImportPlan, PlannedImage } from './plan.js';

export interface ImportEvents {
  planned?(work: { images: number; complete: number; uploads: number; uploadBytes: number; mounts: number }): void;
  bytes?(n: number): void;
  blobFailed?(digest: string, message: string): void;
  imageDone?(image: PlannedImage, status: ImageImportStatus): void;
  /** A blob cut across volumes cannot be completed yet: the parts this volume carries go in ahead. */
  partsStaged?(digest: string, parts: number, waitingFor: number[]): void;
}

export type ImageImportStatus = 'already present' | 'imported' | 'waiting' | 'failed' | 'not accepted';

export interface ImportResult {
  /** `cause` of a failure: the bundle's content, or the registry (network, refusal). */
  images: Array<{
    reference: string;
    target: string;
    digest: string;
    status: ImageImportStatus;
    reason?: string;
    cause?: 'bundle' | 'registry';
  }>;
  uploaded: { blobs: number; bytes: number };
  mounted: number;
  skipped: number;
  /** Whether blob payloads were read: a registry that already holds everything needs only the metadata. */
  readBundle: boolean;
  /** Blobs cut across volumes that this run could not complete: parts pushed ahead, volumes still needed. */
  staged: Array<{ digest: string; parts: number; waitingFor: number[] }>;
}

/** A delta was imported into a registry that lacks what it was made against. */
export class MissingDependenciesError extends Error {
  override name = 'MissingDependenciesError';
  constructor(
    readonly digests: string[],
    plan: ImportPlan,
  ) {
    const users = (d: string) =>
      plan.images.filter((p) => p.blobs.includes(d)).map((p) => printable(p.image.reference));
    const shown = digests.slice(0, 5).map((d) => `  - ${d} (needed by ${users(d).join(', ')})`);
    super(
      `this delta bundle depends on ${digests.length} blob(s) the registry does not hold; nothing was pushed. Import the bundle it was made against first (or export a full bundle):\n${shown.join('\n')}${digests.length > 5 ? `\n  … and ${digests.length - 5} more` : ''}`,
    );
  }
}

/**
 * Pushes a bundle into a registry so that no tag ever points at something that
 * cannot be pulled, and nothing at all from a bundle that was altered:
 *  0. locate the blobs in the tar by walking its headers (seeking, not reading,
 *     over configs and layers), reading the manifests, and checking the whole
 *     structure (see indexBundle): an altered bundle is refused before the
 *     registry hears a single request;
 *  1. ask the registry what it already has (tags, then blobs): a rerun uploads
 *     nothing twice;
 *  2. upload the missing blobs in parallel straight from their byte ranges,
 *     hashed on the way (the registry checks `?digest=` too), and mount each
 *     into the other repositories that need it;
 *  3. push manifests by digest, children before indexes, only for images whose
 *     every blob is in place; tags last.
 * A ranged read can be repeated, so transient upload failures are retried.
 */
export async function importBundle(
  path: string,
  client: RegistryClient,
  registry: string,
  plan: ImportPlan,
  opts: { concurrency: number; events?: ImportEvents },
): Promise<ImportResult> {
  // 0. The bundle's structure, checked before the registry hears anything: an altered bundle is refused whole.
  const index: BundleIndex = await indexBundle(path);
  const run = startRun(path, client, registry, plan, index, opts);

  // 1. What is already complete? A tag is only ever set after everything below it.
  const todo = await incompleteImages(run);
  if (todo.length === 0) {
    run.ev.planned?.({
      images: plan.images.length,
      complete: plan.images.length,
      uploads: 0,
      uploadBytes: 0,
      mounts: 0,
    });
    return run.result;
  }
  await requirePushable(run, todo);
  const blobs = await missingBlobs(run, todo);
  await mountDependencies(run, blobs);
  markWaiting(run, blobs);

  // 2. Mount what the registry has elsewhere; upload the rest from where the tar holds it.
  const jobs = await planUploads(run, blobs, todo.length);
  for (const [digest, from] of blobs.holder) if (blobs.needs.has(digest)) await mountAll(run, blobs, digest, from.name);
  await uploadAll(run, blobs, jobs);

  // 3. Manifests, then tags, only for images with every blob in place.
  for (const p of todo) await pushImage(run, blobs, p);
  return run.result;
}

/** What every phase of one import reads and adds to. */
interface ImportRun {
  path: string;
  registry: string;
  plan: ImportPlan;
  concurrency: number;
  ev: ImportEvents;
  /** Where the tar holds each blob, from the structure check. */
  index: BundleIndex;
  result: ImportResult;
  /** The handle on a repository of the target registry: one per name, so handles compare by identity. */
  repository(name: string): Repository;
}

/** Where each config and layer stands: found in phase 1, worked off in phase 2, read in phase 3. */
interface BlobState {
  /** Which repositories still lack which config or layer. */
  needs: Map<string, Repository[]>;
  /** A repository of this registry already holding the blob: mount instead of upload. */
  holder: Map<string, Repository>;
  /** Blobs this run cannot complete, and the volumes that bring them. */
  waiting: Map<string, number[]>;
  failed: Map<string, { message: string; cause: 'bundle' | 'registry' }>;
}

function startRun(
  path: string,
  client: RegistryClient,
  registry: string,
  plan: ImportPlan,
  index: BundleIndex,
  opts: { concurrency: number; events?: ImportEvents },
): ImportRun {
  const handles = new Map<string, Repository>();
  return {
    path,
    registry,
    plan,
    concurrency: opts.concurrency,
    ev: opts.events ?? {},
    index,
    result: { images: [], uploaded: { blobs: 0, bytes: 0 }, mounted: 0, skipped: 0, readBundle: false, staged: [] },
    repository(name) {
      let repo = handles.get(name);
      if (!repo) handles.set(name, (repo = client.repository(registry, name)));
      return repo;
    },
  };
}

function record(
  run: ImportRun,
  p: PlannedImage,
  status: ImageImportStatus,
  reason?: string,
  cause?: 'bundle' | 'registry',
): void {
  run.result.images.push({
    reference: p.image.reference,
    target: target(run.registry, p),
    digest: p.image.digest,
    status,
    ...(reason ? { reason } : {}),
    ...(cause ? { cause } : {}),
  });
  run.ev.imageDone?.(p, status);
}

/** Phase 1, images: those whose tag (or digest) already names the bundle's digest are recorded as present; the others are returned. */
async function incompleteImages(run: ImportRun): Promise<PlannedImage[]> {
  const present = await mapSettled(run.plan.images, run.concurrency, async (p) => {
    const head = await run.repository(p.repository).headManifest(p.tag ?? p.image.digest, 'pull,push');
    return head?.digest === p.image.digest;
  });
  const todo: PlannedImage[] = [];
  run.plan.images.forEach((p, i) => {
    const r = present[i]!;
    if (!r.ok) throw r.error;
    if (r.value) record(run, p, 'already present');
    else todo.push(p);
  });
  return todo;
}

/** Phase 1, blobs: which repository lacks which config or layer, and which repository already holds it. */
async function missingBlobs(run: ImportRun, todo: PlannedImage[]): Promise<BlobState> {
  const needs = new Map<string, Repository[]>();
  for (const p of todo) {
    const repo = run.repository(p.repository);
    for (const d of p.blobs) {
      const repos = needs.get(d) ?? [];
      if (!repos.includes(repo)) repos.push(repo);
      needs.set(d, repos);
    }
  }
  const pairs = [...needs].flatMap(([digest, repos]) => repos.map((repo) => ({ digest, repo })));
  const exists = await mapSettled(pairs, run.concurrency * 2, ({ digest, repo }) => repo.hasBlob(digest));
  const holder = new Map<string, Repository>();
  pairs.forEach(({ digest, repo }, i) => {
    const r = exists[i]!;
    if (!r.ok) throw r.error;
    if (!r.value) return;
    needs.set(
      digest,
      needs.get(digest)!.filter((x) => x !== repo),
    );
    holder.set(digest, holder.get(digest) ?? repo);
    run.result.skipped++;
  });
  for (const [digest, repos] of needs) if (repos.length === 0) needs.delete(digest);
  return { needs, holder, waiting: new Map(), failed: new Map() };
}

/**
 * A delta's external blobs must already be in the registry: mount them where
 * they are missing, and refuse before anything is uploaded if they are nowhere.
 */
async function mountDependencies(run: ImportRun, blobs: BlobState): Promise<void> {
  const missingDeps: string[] = [];
  for (const [digest] of blobs.needs) {
    if (!run.plan.external.has(digest)) continue;
    const from = blobs.holder.get(digest)?.name ?? run.plan.external.get(digest);
    if (from) await mountAll(run, blobs, digest, from);
    if (blobs.needs.has(digest)) missingDeps.push(digest);
  }
  if (missingDeps.length > 0) throw new MissingDependenciesError(missingDeps, run.plan);
}

/**
 * Registries where a repository (or its project) must exist before a push
 * (Harbor, GitLab, ECR) refuse the first upload. Each target repository is
 * asked once, before anything is pushed, so every one to create is named at once.
 */
async function requirePushable(run: ImportRun, todo: PlannedImage[]): Promise<void> {
  const names = [...new Set(todo.map((p) => p.repository))].sort();
  const probes = await mapSettled(names, run.concurrency, (name) => run.repository(name).probePush());
  const refused: Array<{ name: string; reason: string }> = [];
  probes.forEach((r, i) => {
    if (!r.ok) throw r.error;
    if (r.value !== undefined) refused.push({ name: names[i]!, reason: r.value });
  });
  if (refused.length > 0) throw new RepositoriesMissingError(run.registry, refused);
}

/** The registry refuses pushes to repositories that do not exist yet; nothing was pushed. */
export class RepositoriesMissingError extends Error {
  override name = 'RepositoriesMissingError';
  constructor(registry: string, refused: Array<{ name: string; reason: string }>) {
    const projects = [...new Set(refused.map((r) => r.name.split('/')[0]!))];
    const shown = refused.slice(0, 20).map((r) => printable(r.name));
    super(
      `${registry} refuses pushes to ${refused.length} repositor${refused.length > 1 ? 'ies' : 'y'} that must exist first (${printable(refused[0]!.reason, 200)}); nothing was pushed. ` +
        `Create project${projects.length > 1 ? 's' : ''} ${projects.map((p) => printable(p)).join(', ')} (or the repositories ${shown.join(', ')}${refused.length > 20 ? ` and ${refused.length - 20} more` : ''}), or choose an existing project with --repo-prefix, then rerun`,
    );
  }
}

/** Blobs of other volumes are not in this one: their images wait. */
function markWaiting(run: ImportRun, blobs: BlobState): void {
  const volume = run.plan.volume;
  for (const d of blobs.needs.keys()) {
    const v = volume?.of.get(d);
    if (v !== undefined && v !== volume!.index && !blobs.holder.has(d)) blobs.waiting.set(d, [v]);
  }
}

/**
 * Phase 2, planned: one upload per blob this volume can complete (a blob cut
 * across volumes may stage its parts instead), a failure for a blob the tar
 * lacks; then the work is announced.
 */
async function planUploads(run: ImportRun, blobs: BlobState, incomplete: number): Promise<UploadJob[]> {
  const { plan, index, path } = run;
  const jobs: UploadJob[] = [];
  for (const digest of blobs.needs.keys()) {
    if (blobs.holder.has(digest) || blobs.waiting.has(digest)) continue;
    const size = plan.sizes.get(digest) ?? 0;
    const parts = plan.volume?.parts.get(digest);
    if (parts) {
      jobs.push(...(await splitBlobJobs(run, blobs, digest, parts)));
      continue;
    }
    const at = index.blobs.get(digest);
    if (!at) blobs.failed.set(digest, { message: 'is missing from the bundle', cause: 'bundle' });
    else jobs.push({ digest, size, for: digest, open: (onBytes) => readBlob(path, digest, at, onBytes) });
  }
  run.ev.planned?.({
    images: plan.images.length,
    complete: plan.images.length - incomplete,
    uploads: jobs.length,
    uploadBytes: jobs.reduce((s, j) => s + j.size, 0),
    mounts:
      [...blobs.needs.entries()].filter(([d]) => !blobs.waiting.has(d)).reduce((s, [, r]) => s + r.length, 0) -
      jobs.filter((j) => !j.stage).length,
  });
  return jobs;
}

/** Phase 2, done: every upload in parallel; a blob that fails fails its images, named in `blobs.failed`. */
async function uploadAll(run: ImportRun, blobs: BlobState, jobs: UploadJob[]): Promise<void> {
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

/** Phase 3, one image: its manifests by digest, children before indexes, then its tag; or why not. */
async function pushImage(run: ImportRun, blobs: BlobState, p: PlannedImage): Promise<void> {
  const waitsFor = [...new Set(p.blobs.flatMap((d) => blobs.waiting.get(d) ?? []))].sort((a, b) => a - b);
  const broken = p.blobs.find((d) => blobs.failed.has(d));
  if (broken) {
    const f = blobs.failed.get(broken)!;
    record(run, p, 'failed', `blob ${broken} ${f.message}`, f.cause);
    return;
  }
  if (waitsFor.length > 0) {
    record(run, p, 'waiting', `needs volume${waitsFor.length > 1 ? 's' : ''} ${waitsFor.join(', ')}`);
    return;
  }
  const { bytes, unreadable } = await readManifests(run, p);
  if (unreadable) {
    record(run, p, 'failed', `manifest ${unreadable} is missing from the bundle or damaged`, 'bundle');
    return;
  }
  const repo = run.repository(p.repository);
  try {
    for (const d of p.manifests) await repo.putManifest(d, bytes.get(d)!, run.plan.mediaTypes.get(d)!);
    if (p.tag !== undefined) await repo.putManifest(p.tag, bytes.get(p.image.digest)!, p.image.mediaType);
    record(run, p, 'imported');
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    if (p.image.artifact && err.status === 400) {
      // Registries without OCI 1.1 refuse manifests with `subject`/`artifactType`: the images stand without them.
      record(run, p, 'not accepted', `the registry does not accept this ${p.image.artifact.kind} (${err.message})`);
      return;
    }
    let reason = err.message;
    let cause: 'bundle' | 'registry' = 'registry';
    if (err.kind === 'not-found' && p.image.absent.length > 0) {
      reason = `the registry refuses the index because ${p.image.absent.length} platform manifest(s) were left out at export (--platform); nothing was tagged. Re-export without --platform for this registry, or import into a registry that accepts sparse indexes`;
      cause = 'bundle';
    }
    record(run, p, 'failed', reason, cause);
  }
}

/** An image's manifests from the tar, in push order, up to the first one missing or damaged (`unreadable`). */
async function readManifests(
  run: ImportRun,
  p: PlannedImage,
): Promise<{ bytes: Map<string, Buffer>; unreadable?: string }> {
  const bytes = new Map<string, Buffer>();
  for (const d of p.manifests) {
    const at = run.index.blobs.get(d);
    const b = at ? await readSmallBlob(run.path, d, at, MAX_MANIFEST_BYTES) : undefined;
    if (!b) return { bytes, unreadable: d };
    bytes.set(d, b);
  }
  return { bytes };
}

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
    staged: async function* (p: BlobPart): AsyncGenerator<Buffer> {
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
    },
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

function target(registry: string, p: PlannedImage): string {
  return `${registry}/${p.repository}${p.tag !== undefined ? `:${p.tag}` : `@${p.image.digest}`}`;
}

/** Cross-repository mounts from `source` into every repository still lacking the blob. */
async function mountAll(run: ImportRun, blobs: BlobState, digest: string, source: string): Promise<void> {
  const left: Repository[] = [];
  for (const repo of blobs.needs.get(digest) ?? []) {
    if (await repo.mountBlob(digest, source)) run.result.mounted++;
    else left.push(repo);
  }
  if (left.length === 0) blobs.needs.delete(digest);
  else blobs.needs.set(digest, left);
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
