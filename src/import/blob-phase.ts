import { MissingDependenciesError, type BlobState, type ImportRun } from './import-run.js';
import type { PlannedImage } from './plan.js';
import type { Repository } from '../registry/repository.js';
import { mapSettled } from '../util/pool.js';

/**
 * Phase 1, blobs: which repository lacks which config or layer, and which
 * repository already holds it. Only what is not known already is asked:
 *  - a blob of an image already complete in the registry is held by that
 *    image's repository, and is mounted from there into the others unasked (a
 *    mount of a blob the target already holds answers 201 all the same);
 *  - a repository the catalog does not list holds nothing.
 * On an empty registry with a catalog, no blob is asked about at all.
 */
export async function missingBlobs(run: ImportRun, todo: PlannedImage[]): Promise<BlobState> {
  const sets = new Map<string, Set<Repository>>();
  for (const p of todo) {
    const repo = run.repository(p.repository);
    for (const d of p.blobs) {
      const repos = sets.get(d) ?? new Set();
      repos.add(repo);
      sets.set(d, repos);
    }
  }
  const needs = new Map<string, Repository[]>();
  const holder = new Map<string, Repository>();
  for (const [digest, repos] of sets) {
    const held = run.held.get(digest);
    if (held) holder.set(digest, held);
    if (held && repos.delete(held)) run.result.skipped++;
    if (repos.size > 0) needs.set(digest, [...repos]);
  }
  const pairs = [...needs]
    .filter(([digest]) => !holder.has(digest))
    .flatMap(([digest, repos]) => repos.filter((r) => run.mayHold(r.name)).map((repo) => ({ digest, repo })));
  const exists = await mapSettled(pairs, run.concurrency * 2, ({ digest, repo }) => repo.hasBlob(digest));
  pairs.forEach(({ digest, repo }, i) => {
    const r = exists[i]!;
    if (!r.ok) throw r.error;
    if (!r.value) return;
    const left = needs.get(digest)!.filter((x) => x !== repo);
    if (left.length > 0) needs.set(digest, left);
    else needs.delete(digest);
    if (!holder.has(digest)) holder.set(digest, repo);
    run.result.skipped++;
  });
  return { needs, holder, waiting: new Map(), failed: new Map() };
}

/**
 * A delta's external blobs must already be in the registry: mount them where
 * they are missing, and refuse before anything is uploaded if they are nowhere.
 */
export async function mountDependencies(run: ImportRun, blobs: BlobState): Promise<void> {
  const missingDeps: string[] = [];
  for (const [digest] of blobs.needs) {
    if (!run.plan.external.has(digest)) continue;
    const from = blobs.holder.get(digest)?.name ?? run.plan.external.get(digest);
    if (from) await mountAll(run, blobs, digest, from);
    if (blobs.needs.has(digest)) missingDeps.push(digest);
  }
  if (missingDeps.length > 0) throw new MissingDependenciesError(missingDeps, run.plan);
}

/** Blobs of other volumes are not in this one: their images wait. */
export function markWaiting(run: ImportRun, blobs: BlobState): void {
  const volume = run.plan.volume;
  for (const d of blobs.needs.keys()) {
    const v = volume?.of.get(d);
    if (v !== undefined && v !== volume!.index && !blobs.holder.has(d)) blobs.waiting.set(d, [v]);
  }
}

/** Phase 2, first: every blob the registry holds elsewhere is mounted where it is missing; a refused mount leaves it to upload. */
export async function mountFromHolders(run: ImportRun, blobs: BlobState): Promise<void> {
  const pairs = [...blobs.holder].flatMap(([digest, from]) =>
    (blobs.needs.get(digest) ?? []).map((repo) => ({ digest, repo, from: from.name })),
  );
  await mountPairs(run, blobs, pairs);
}

/** Cross-repository mounts from `source` into every repository still lacking the blob. */
export async function mountAll(run: ImportRun, blobs: BlobState, digest: string, source: string): Promise<void> {
  const pairs = (blobs.needs.get(digest) ?? []).map((repo) => ({ digest, repo, from: source }));
  await mountPairs(run, blobs, pairs);
}

/** Mounts in parallel; each one done leaves `needs`, each refused stays there. */
async function mountPairs(
  run: ImportRun,
  blobs: BlobState,
  pairs: Array<{ digest: string; repo: Repository; from: string }>,
): Promise<void> {
  const done = await mapSettled(pairs, run.concurrency, ({ digest, repo, from }) => repo.mountBlob(digest, from));
  const mounted = new Map<string, Set<Repository>>();
  done.forEach((r, i) => {
    if (!r.ok) throw r.error;
    if (!r.value) return;
    const { digest, repo } = pairs[i]!;
    mounted.set(digest, (mounted.get(digest) ?? new Set()).add(repo));
    run.result.mounted++;
  });
  for (const [digest, repos] of mounted) {
    const left = (blobs.needs.get(digest) ?? []).filter((r) => !repos.has(r));
    if (left.length > 0) blobs.needs.set(digest, left);
    else blobs.needs.delete(digest);
  }
}
