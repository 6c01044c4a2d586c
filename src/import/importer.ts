import type { Readable } from 'node:stream';
import { printable } from '../util/text.js';
import { DigestMismatchError, verified } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import type { RegistryClient } from '../registry/client.js';
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

export type ImageImportStatus = 'already present' | 'imported' | 'waiting' | 'failed';

export interface ImportResult {
  /** `cause` of a failure: the bundle's content, or the registry (network, refusal). */
  images: Array<{ reference: string; target: string; digest: string; status: ImageImportStatus; reason?: string; cause?: 'bundle' | 'registry' }>;
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
    const users = (d: string) => plan.images.filter((p) => p.blobs.includes(d)).map((p) => printable(p.image.reference));
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
export async function importBundle(path: string, client: RegistryClient, registry: string, plan: ImportPlan, opts: { concurrency: number; events?: ImportEvents }): Promise<ImportResult> {
  const ev = opts.events ?? {};
  const result: ImportResult = { images: [], uploaded: { blobs: 0, bytes: 0 }, mounted: 0, skipped: 0, readBundle: false, staged: [] };
  const record = (p: PlannedImage, status: ImageImportStatus, reason?: string, cause?: 'bundle' | 'registry') => {
    result.images.push({ reference: p.image.reference, target: target(registry, p), digest: p.image.digest, status, ...(reason ? { reason } : {}), ...(cause ? { cause } : {}) });
    ev.imageDone?.(p, status);
  };

  // 0. The bundle's structure, checked before the registry hears anything: an altered bundle is refused whole.
  const index: BundleIndex = await indexBundle(path);

  // 1. What is already complete? A tag is only ever set after everything below it.
  const present = await mapSettled(plan.images, opts.concurrency, async (p) => {
    const head = await client.headManifest(registry, p.repository, p.tag ?? p.image.digest, 'pull,push');
    return head?.digest === p.image.digest;
  });
  const todo: PlannedImage[] = [];
  plan.images.forEach((p, i) => {
    const r = present[i]!;
    if (!r.ok) throw r.error;
    if (r.value) record(p, 'already present');
    else todo.push(p);
  });
  if (todo.length === 0) {
    ev.planned?.({ images: plan.images.length, complete: plan.images.length, uploads: 0, uploadBytes: 0, mounts: 0 });
    return result;
  }

  // Which repository lacks which config or layer.
  const needs = new Map<string, string[]>();
  for (const p of todo) {
    for (const d of p.blobs) {
      const repos = needs.get(d) ?? [];
      if (!repos.includes(p.repository)) repos.push(p.repository);
      needs.set(d, repos);
    }
  }
  const pairs = [...needs].flatMap(([digest, repos]) => repos.map((repo) => ({ digest, repo })));
  const exists = await mapSettled(pairs, opts.concurrency * 2, ({ digest, repo }) => client.hasBlob(registry, repo, digest));
  /** A repository of this registry already holding the blob: mount instead of upload. */
  const holder = new Map<string, string>();
  pairs.forEach(({ digest, repo }, i) => {
    const r = exists[i]!;
    if (!r.ok) throw r.error;
    if (!r.value) return;
    needs.set(digest, needs.get(digest)!.filter((x) => x !== repo));
    holder.set(digest, holder.get(digest) ?? repo);
    result.skipped++;
  });
  for (const [digest, repos] of needs) if (repos.length === 0) needs.delete(digest);

  // A delta's external blobs must already be in the registry: mount them where
  // they are missing, and refuse before anything is uploaded if they are nowhere.
  const missingDeps: string[] = [];
  for (const [digest] of needs) {
    if (!plan.external.has(digest)) continue;
    const from = holder.get(digest) ?? plan.external.get(digest);
    if (from) await mountAll(client, registry, digest, from, needs, result);
    if (needs.has(digest)) missingDeps.push(digest);
  }
  if (missingDeps.length > 0) throw new MissingDependenciesError(missingDeps, plan);

  // Blobs of other volumes are not in this one: their images wait.
  const waiting = new Map<string, number[]>();
  for (const d of needs.keys()) {
    const v = plan.volume?.of.get(d);
    if (v !== undefined && v !== plan.volume!.index && !holder.has(d)) waiting.set(d, [v]);
  }

  // 2. Mount what the registry has elsewhere; upload the rest from where the tar holds it.
  const failed = new Map<string, { message: string; cause: 'bundle' | 'registry' }>();
  const jobs: UploadJob[] = [];
  for (const digest of needs.keys()) {
    if (holder.has(digest) || waiting.has(digest)) continue;
    const size = plan.sizes.get(digest) ?? 0;
    const parts = plan.volume?.parts.get(digest);
    if (parts) {
      jobs.push(...(await splitBlobJobs(client, registry, path, plan, index, digest, parts, waiting, result, ev)));
      continue;
    }
    const at = index.blobs.get(digest);
    if (!at) failed.set(digest, { message: 'is missing from the bundle', cause: 'bundle' });
    else jobs.push({ digest, size, for: digest, open: (onBytes) => readBlob(path, digest, at, onBytes) });
  }
  ev.planned?.({
    images: plan.images.length,
    complete: plan.images.length - todo.length,
    uploads: jobs.length,
    uploadBytes: jobs.reduce((s, j) => s + j.size, 0),
    mounts: [...needs.entries()].filter(([d]) => !waiting.has(d)).reduce((s, [, r]) => s + r.length, 0) - jobs.filter((j) => !j.stage).length,
  });
  for (const [digest, from] of holder) if (needs.has(digest)) await mountAll(client, registry, digest, from, needs, result);

  // Largest first, so a big layer does not start last and run alone.
  jobs.sort((a, b) => b.size - a.size);
  if (jobs.length > 0) result.readBundle = true;
  const uploaded = await mapSettled(jobs, opts.concurrency, async (job) => {
    if (job.stage) {
      await upload(client, registry, job.stage, job.digest, job.size, () => job.open(ev.bytes));
      result.uploaded.blobs++;
      result.uploaded.bytes += job.size;
      return;
    }
    const digest = job.digest;
    const first = needs.get(digest)![0]!;
    await upload(client, registry, first, digest, job.size, () => job.open(ev.bytes));
    result.uploaded.blobs++;
    result.uploaded.bytes += job.size;
    needs.set(digest, needs.get(digest)!.slice(1));
    await mountAll(client, registry, digest, first, needs, result);
    // A registry that refuses mounts gets the bytes again.
    for (const repo of needs.get(digest) ?? []) await upload(client, registry, repo, digest, job.size, () => job.open());
    needs.delete(digest);
  });
  uploaded.forEach((r, i) => {
    if (r.ok) return;
    const job = jobs[i]!;
    const err = r.error;
    // Only our own hash of the bundle's bytes convicts the bundle; anything else is the registry's side.
    const damaged = err instanceof DigestMismatchError;
    if (!damaged && !(err instanceof RegistryError)) throw err;
    const what = job.stage ? `part ${job.digest} ` : '';
    const message = damaged ? `${what}is damaged in the bundle (${(err as Error).message})` : `${what}could not be uploaded: ${(err as Error).message}`;
    failed.set(job.for, { message, cause: damaged ? 'bundle' : 'registry' });
    ev.blobFailed?.(job.for, message);
  });

  // 3. Manifests, then tags, only for images with every blob in place.
  for (const p of todo) {
    const waitsFor = [...new Set(p.blobs.flatMap((d) => waiting.get(d) ?? []))].sort((a, b) => a - b);
    const broken = p.blobs.find((d) => failed.has(d));
    if (broken) {
      const f = failed.get(broken)!;
      record(p, 'failed', `blob ${broken} ${f.message}`, f.cause);
      continue;
    }
    if (waitsFor.length > 0) {
      record(p, 'waiting', `needs volume${waitsFor.length > 1 ? 's' : ''} ${waitsFor.join(', ')}`);
      continue;
    }
    const bytes = new Map<string, Buffer>();
    let unreadable: string | undefined;
    for (const d of p.manifests) {
      const at = index.blobs.get(d);
      const b = at ? await readSmallBlob(path, d, at, MAX_MANIFEST_BYTES) : undefined;
      if (!b) {
        unreadable = d;
        break;
      }
      bytes.set(d, b);
    }
    if (unreadable) {
      record(p, 'failed', `manifest ${unreadable} is missing from the bundle or damaged`, 'bundle');
      continue;
    }
    try {
      for (const d of p.manifests) await client.putManifest(registry, p.repository, d, bytes.get(d)!, plan.mediaTypes.get(d)!);
      if (p.tag !== undefined) await client.putManifest(registry, p.repository, p.tag, bytes.get(p.image.digest)!, p.image.mediaType);
      record(p, 'imported');
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      let reason = err.message;
      let cause: 'bundle' | 'registry' = 'registry';
      if (err.kind === 'not-found' && p.image.absent.length > 0) {
        reason = `the registry refuses the index because ${p.image.absent.length} platform manifest(s) were left out at export (--platform); nothing was tagged. Re-export without --platform for this registry, or import into a registry that accepts sparse indexes`;
        cause = 'bundle';
      }
      record(p, 'failed', reason, cause);
    }
  }
  return result;
}

/** One upload: a blob into the first repository lacking it, or a part of a split blob staged into `stage`. */
interface UploadJob {
  digest: string;
  size: number;
  /** The config or layer whose images fail if this upload fails. */
  for: string;
  stage?: string;
  /** A fresh, verified read of the bytes (one per attempt). */
  open: (onBytes?: (n: number) => void) => Readable;
}

/**
 * The uploads a blob cut across volumes needs in this run: the whole blob when
 * every part is in this volume or already staged in the registry; otherwise the
 * parts this volume carries, staged for a later run, while its images wait.
 */
async function splitBlobJobs(
  client: RegistryClient,
  registry: string,
  path: string,
  plan: ImportPlan,
  index: BundleIndex,
  digest: string,
  parts: BlobPart[],
  waiting: Map<string, number[]>,
  result: ImportResult,
  ev: ImportEvents,
): Promise<UploadJob[]> {
  // The same repository in every run: the first one the bundle maps this blob to.
  const stage = plan.blobRepos.get(digest)![0]!;
  const sources = await locateParts(parts, plan.volume!.index, index.blobs, (d) => client.hasBlob(registry, stage, d));
  const read = {
    local: (p: BlobPart, at: BlobLocation) => readBlob(path, p.digest, at),
    staged: async function* (p: BlobPart): AsyncGenerator<Buffer> {
      const { body } = await client.openBlob(registry, stage, p.digest);
      try {
        for await (const chunk of verified(body, p)) yield chunk as Buffer;
      } catch (err) {
        // Wrong bytes from the registry are the registry's fault, not the bundle's.
        if (err instanceof DigestMismatchError) throw new RegistryError('status', `part ${p.digest} staged in ${registry}/${stage} is corrupt (${err.message}); delete it there and import its volume again`);
        throw err;
      }
    },
  };
  if (sources.waitingFor.length === 0) {
    const size = plan.sizes.get(digest) ?? 0;
    return [{ digest, size, for: digest, open: (onBytes) => joinParts({ digest, size }, parts, sources, read, onBytes) }];
  }
  waiting.set(digest, sources.waitingFor);
  const ahead = [...sources.local].filter(([d]) => !sources.staged.has(d));
  result.staged.push({ digest, parts: ahead.length, waitingFor: sources.waitingFor });
  ev.partsStaged?.(digest, ahead.length, sources.waitingFor);
  return ahead.map(([d, at]) => ({ digest: d, size: at.size, for: digest, stage, open: (onBytes) => readBlob(path, d, at, onBytes) }));
}

function target(registry: string, p: PlannedImage): string {
  return `${registry}/${p.repository}${p.tag !== undefined ? `:${p.tag}` : `@${p.image.digest}`}`;
}

/** Cross-repository mounts from `source` into every repository still lacking the blob. */
async function mountAll(client: RegistryClient, registry: string, digest: string, source: string, needs: Map<string, string[]>, result: ImportResult): Promise<void> {
  const left: string[] = [];
  for (const repo of needs.get(digest) ?? []) {
    if (await client.mountBlob(registry, repo, digest, source)) result.mounted++;
    else left.push(repo);
  }
  if (left.length === 0) needs.delete(digest);
  else needs.set(digest, left);
}

/**
 * One blob upload from a fresh ranged read per attempt. A mismatch between the
 * bytes and the digest surfaces as the stream's error, which aborts the request
 * before it completes.
 */
async function upload(client: RegistryClient, registry: string, repo: string, digest: string, size: number, open: () => Readable): Promise<void> {
  let mismatch: DigestMismatchError | undefined;
  try {
    await client.uploadBlob(registry, repo, digest, size, () => {
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
