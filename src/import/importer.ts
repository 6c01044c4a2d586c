import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import type { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { mapSettled } from '../util/pool.js';
import { favourSmallHeap } from '../util/small-heap.js';
import { readSmallBlob } from '../bundle/blob-ranges.js';
import type { ParsedMetadata } from '../bundle/reader.js';
import { openCheckedFile, type CheckedFile } from '../bundle/open/structure.js';
import { bundleSignatureSource } from '../signatures/bundle-source.js';
import { checkSignatures, failsPolicy, type SignatureOptions } from '../signatures/check-images.js';
import type { CountersignKey } from '../signatures/countersign.js';
import { planImport, type ImportPlan, type PlannedImage } from './plan.js';
import { listedRepositories, requirePushable } from './known.js';
import { markWaiting, missingBlobs, mountDependencies, mountFromHolders } from './blob-phase.js';
import { planUploads, uploadAll } from './uploads.js';
import {
  resultEntry,
  startRun,
  type BlobState,
  type ImageOutcome,
  type ImportEvents,
  type ImportResult,
  type ImportRun,
} from './import-run.js';

export { MissingDependenciesError } from './import-run.js';
export type { ImageImportStatus, ImportEvents, ImportResult } from './import-run.js';
export { RepositoriesMissingError } from './known.js';

/**
 * Pushes a bundle into a registry so that no tag ever points at something that
 * cannot be pulled, and nothing at all from a bundle that was altered:
 *  0. locate the blobs in the tar by walking its headers (seeking, not reading,
 *     over configs and layers), reading the manifests, and checking the whole
 *     structure (see openCheckedFile): an altered bundle is refused before the
 *     registry hears a single request;
 *  1. ask the registry what it already has: its catalog once, then each image's
 *     tag (or digest) in the repositories it lists, then the blobs of the
 *     images not complete (see missingBlobs): a rerun uploads nothing twice, and
 *     an empty registry is asked almost nothing;
 *  2. mount what the registry holds elsewhere, upload the rest in parallel
 *     straight from their byte ranges, hashed on the way (the registry checks
 *     `?digest=` too), and mount each into the other repositories that need it;
 *  3. push each image whose every blob is in place: child manifests by digest,
 *     then the top-level manifest once, by its tag (by digest when it has none),
 *     which sets the tag last.
 * A ranged read can be repeated, so transient upload failures are retried.
 */
export async function importBundle(
  path: string,
  client: RegistryClient,
  registry: string,
  plan: ImportPlan,
  opts: {
    concurrency: number;
    events?: ImportEvents;
    parsed?: ParsedMetadata;
    signatures?: SignatureOptions;
  },
): Promise<ImportResult> {
  favourSmallHeap();
  // 0. The bundle's structure, checked before the registry hears anything: an altered bundle is refused whole.
  const index = await openCheckedFile(path, 'none of it is imported and nothing was pushed', opts.parsed);
  // 0b. With a signature policy, an image that fails it is left out whole: nothing of it is pushed or tagged.
  const signed = opts.signatures
    ? await checkSignatures(index.metadata.images, bundleSignatureSource([index]), opts.signatures)
    : undefined;
  const refused = new Set(signed?.filter(failsPolicy).map((s) => s.reference) ?? []);
  if (refused.size > 0) plan = planImport(withoutImages(index.metadata, refused), plan.mapping);
  const listed = await listedRepositories(client, registry);
  const run = startRun(path, client, registry, plan, index, { ...opts, listed });
  run.result.signatures = signed;
  for (const s of signed?.filter(failsPolicy) ?? [])
    run.result.images.push({
      reference: s.reference,
      target: '-',
      digest: s.digest,
      status: 'unsigned',
      reason: `${s.rule ? `${s.rule}: ` : ''}${s.reason ?? s.status}`,
      cause: 'bundle',
    });

  // 1. What is already complete? A tag is only ever set after everything below it.
  const todo = await incompleteImages(run);
  if (todo.length === 0) {
    const all = plan.images.length;
    run.ev.planned?.({ images: all, complete: all, uploads: 0, uploadBytes: 0, mounts: 0 });
    return run.result;
  }
  const targets = [...new Set(todo.map((p) => p.repository))].map((name) => run.repository(name));
  await requirePushable(registry, targets, listed, run.concurrency);
  const blobs = await missingBlobs(run, todo);
  await mountDependencies(run, blobs);
  markWaiting(run, blobs);

  // 2. Mount what the registry has elsewhere; upload the rest from where the tar holds it.
  await mountFromHolders(run, blobs);
  await uploadAll(run, blobs, await planUploads(run, blobs, todo.length));

  // 3. Manifests, then tags, only for images with every blob in place.
  await pushImages(run, blobs, todo);
  return run.result;
}

/**
 * After an import (and its check that the registry serves the bundle as it
 * is): the cluster's signature beside every image in the registry whose
 * upstream signature the policy verified. Returns how many were signed.
 */
export async function countersignVerified(
  client: RegistryClient,
  registry: string,
  plan: ImportPlan,
  result: ImportResult,
  key: CountersignKey,
  concurrency: number,
): Promise<number> {
  const verified = new Set(result.signatures?.filter((s) => s.status === 'verified').map((s) => s.reference));
  const inRegistry = new Set(
    result.images.filter((i) => i.status === 'imported' || i.status === 'already present').map((i) => i.reference),
  );
  const targets = plan.images.filter((p) => verified.has(p.image.reference) && inRegistry.has(p.image.reference));
  const { countersign } = await import('./countersign.js');
  const done = await mapSettled(targets, concurrency, (p) =>
    countersign(
      {
        repo: client.repository(registry, p.repository),
        image: { digest: p.image.digest, mediaType: p.image.mediaType, size: p.image.size },
        name: `${registry}/${p.repository}`,
      },
      key,
    ),
  );
  for (const r of done) if (!r.ok) throw r.error;
  return targets.length;
}

/** The metadata without these images and the artifacts carried for them. */
function withoutImages(metadata: CheckedFile['metadata'], references: Set<string>): CheckedFile['metadata'] {
  return { ...metadata, images: metadata.images.filter((im) => !references.has(im.artifact?.of ?? im.reference)) };
}

/**
 * Phase 1, images: those whose tag (or digest) already names the bundle's
 * digest are recorded as present, and their configs and layers as held by
 * their repository; the others are returned. A repository the catalog does not
 * list holds none of them: its images are not asked about.
 */
async function incompleteImages(run: ImportRun): Promise<PlannedImage[]> {
  // HEADs move no data: twice the transfers at once, as many as the connection pool holds.
  const present = await mapSettled(run.plan.images, run.concurrency * 2, async (p) => {
    if (!run.mayHold(p.repository)) return false;
    const head = await run.repository(p.repository).headManifest(p.tag ?? p.image.digest, 'pull,push');
    return head?.digest === p.image.digest;
  });
  const todo: PlannedImage[] = [];
  run.plan.images.forEach((p, i) => {
    const r = present[i]!;
    if (!r.ok) throw r.error;
    if (!r.value) {
      todo.push(p);
      return;
    }
    run.result.images.push(resultEntry(run, p, { status: 'already present' }));
    run.ev.imageDone?.(p, 'already present');
    const repo = run.repository(p.repository);
    for (const d of p.blobs) if (!run.held.has(d)) run.held.set(d, repo);
  });
  return todo;
}

/** Phase 3, in parallel: each image as it ends is reported at once, and listed in the result in plan order. */
async function pushImages(run: ImportRun, blobs: BlobState, todo: PlannedImage[]): Promise<void> {
  const outcomes = await mapSettled(todo, run.concurrency, async (p) => {
    const outcome = await pushImage(run, blobs, p);
    run.ev.imageDone?.(p, outcome.status);
    return outcome;
  });
  outcomes.forEach((o, i) => {
    if (!o.ok) throw o.error;
    run.result.images.push(resultEntry(run, todo[i]!, o.value));
  });
}

/** Phase 3, one image: its child manifests by digest, then the top-level one by its tag (which sets it); or why not. */
async function pushImage(run: ImportRun, blobs: BlobState, p: PlannedImage): Promise<ImageOutcome> {
  const waitsFor = [...new Set(p.blobs.flatMap((d) => blobs.waiting.get(d) ?? []))].sort((a, b) => a - b);
  const broken = p.blobs.find((d) => blobs.failed.has(d));
  if (broken) {
    const f = blobs.failed.get(broken)!;
    return { status: 'failed', reason: `blob ${broken} ${f.message}`, cause: f.cause };
  }
  if (waitsFor.length > 0)
    return { status: 'waiting', reason: `needs volume${waitsFor.length > 1 ? 's' : ''} ${waitsFor.join(', ')}` };
  const { bytes, unreadable } = await readManifests(run, p);
  if (unreadable)
    return {
      status: 'failed',
      reason: `manifest ${unreadable} is missing from the bundle or damaged`,
      cause: 'bundle',
    };
  const repo = run.repository(p.repository);
  try {
    // A manifest put by tag is stored under its digest too: the top-level one goes in once.
    for (const d of p.manifests)
      if (p.tag === undefined || d !== p.image.digest)
        await repo.putManifest(d, bytes.get(d)!, run.plan.mediaTypes.get(d)!);
    if (p.tag !== undefined) await repo.putManifest(p.tag, bytes.get(p.image.digest)!, p.image.mediaType);
    return { status: 'imported' };
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    return refusedManifest(p, err);
  }
}

/** Why a manifest push was refused, and whose fault it is. */
function refusedManifest(p: PlannedImage, err: RegistryError): ImageOutcome {
  if (p.image.artifact && err.status === 400) {
    // Registries without OCI 1.1 refuse manifests with `subject`/`artifactType`: the images stand without them.
    return {
      status: 'not accepted',
      reason: `the registry does not accept this ${p.image.artifact.kind} (${err.message})`,
    };
  }
  if (err.kind === 'not-found' && p.image.absent.length > 0) {
    return {
      status: 'failed',
      reason: `the registry refuses the index because ${p.image.absent.length} platform manifest(s) were left out at export (--platform); nothing was tagged. Re-export without --platform for this registry, or import into a registry that accepts sparse indexes`,
      cause: 'bundle',
    };
  }
  return { status: 'failed', reason: err.message, cause: 'registry' };
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
