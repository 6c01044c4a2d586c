import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DigestMismatchError, digestAlgorithm, sha256Digest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import type { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { mapSettled } from '../util/pool.js';
import type { ImportPlan, PlannedImage } from './import-plan.js';
import { readBundle } from './reader.js';

export interface ImportEvents {
  planned?(work: { images: number; complete: number; uploads: number; uploadBytes: number; mounts: number }): void;
  bytes?(n: number): void;
  blobFailed?(digest: string, message: string): void;
  rejected?(name: string, reason: string): void;
  imageDone?(image: PlannedImage, status: ImageImportStatus): void;
}

export type ImageImportStatus = 'already present' | 'imported' | 'waiting' | 'failed';

export interface ImportResult {
  images: Array<{ reference: string; target: string; digest: string; status: ImageImportStatus; reason?: string }>;
  uploaded: { blobs: number; bytes: number };
  mounted: number;
  skipped: number;
  /** Whether the tar was read at all: a registry that already holds everything needs only the metadata. */
  readBundle: boolean;
  /** Tar entries refused (and skipped) while reading. */
  rejected: string[];
}

interface Pending {
  /** Repositories still lacking this config/layer. */
  repos: string[];
}

/**
 * Pushes a bundle into a registry so that no tag ever points at something that
 * cannot be pulled:
 *  1. ask the registry what it already has (tags, then blobs), so a rerun
 *     uploads nothing twice and a complete registry costs no read of the tar;
 *  2. stream the tar once: each needed blob is uploaded straight from the file
 *     while it is hashed, then mounted into the other repositories that need it;
 *  3. push manifests by digest, children before indexes, only for images whose
 *     every blob is in place; tags last.
 */
export async function importBundle(path: string, client: RegistryClient, registry: string, plan: ImportPlan, opts: { concurrency: number; events?: ImportEvents }): Promise<ImportResult> {
  const ev = opts.events ?? {};
  const result: ImportResult = { images: [], uploaded: { blobs: 0, bytes: 0 }, mounted: 0, skipped: 0, readBundle: false, rejected: [] };
  const onRejected = (name: string, reason: string) => {
    result.rejected.push(`${name}: ${reason}`);
    ev.rejected?.(name, reason);
  };

  // 1. What is already complete? A tag is only ever set after everything below it.
  const present = await mapSettled(plan.images, opts.concurrency, async (p) => {
    const head = await client.headManifest(registry, p.repository, p.tag ?? p.image.digest, 'pull,push');
    return head?.digest === p.image.digest;
  });
  const todo: PlannedImage[] = [];
  plan.images.forEach((p, i) => {
    const r = present[i]!;
    if (!r.ok) throw r.error;
    if (r.value) {
      result.images.push({ reference: p.image.reference, target: target(registry, p), digest: p.image.digest, status: 'already present' });
      ev.imageDone?.(p, 'already present');
    } else todo.push(p);
  });

  const pending = new Map<string, Pending>();
  for (const p of todo) {
    for (const d of p.blobs) {
      const entry = pending.get(d) ?? { repos: [] };
      if (!entry.repos.includes(p.repository)) entry.repos.push(p.repository);
      pending.set(d, entry);
    }
  }
  const pairs = [...pending].flatMap(([digest, e]) => e.repos.map((repo) => ({ digest, repo })));
  const exists = await mapSettled(pairs, opts.concurrency * 2, ({ digest, repo }) => client.hasBlob(registry, repo, digest));
  pairs.forEach(({ digest, repo }, i) => {
    const r = exists[i]!;
    if (!r.ok) throw r.error;
    if (r.value) {
      const e = pending.get(digest)!;
      e.repos = e.repos.filter((x) => x !== repo);
      result.skipped++;
    }
  });
  // A blob already in some repository of this registry can be mounted instead of uploaded.
  const sources = new Map<string, string>();
  pairs.forEach(({ digest, repo }, i) => {
    const r = exists[i]!;
    if (r.ok && r.value && !sources.has(digest)) sources.set(digest, repo);
  });
  for (const [digest, e] of pending) if (e.repos.length === 0) pending.delete(digest);

  // A delta's external blobs must already be in the registry: mount them where
  // they are missing, and refuse before anything is uploaded if they are nowhere.
  const missingDeps: string[] = [];
  for (const [digest, e] of pending) {
    if (!plan.external.has(digest)) continue;
    const from = sources.get(digest) ?? plan.external.get(digest);
    if (from) await spread(client, registry, digest, from, e, result);
    if (e.repos.length > 0) missingDeps.push(digest);
    else pending.delete(digest);
  }
  if (missingDeps.length > 0) throw new MissingDependenciesError(missingDeps, plan);

  // Blobs of other volumes are not read from this one: their images wait.
  const waiting = new Map<string, number>();
  for (const d of pending.keys()) {
    const v = plan.volume?.of.get(d);
    if (v !== undefined && v !== plan.volume!.index && !sources.has(d)) waiting.set(d, v);
  }
  const needUpload = [...pending.keys()].filter((d) => !sources.has(d) && !waiting.has(d));
  ev.planned?.({
    images: plan.images.length,
    complete: plan.images.length - todo.length,
    uploads: needUpload.length,
    uploadBytes: needUpload.reduce((s, d) => s + (plan.sizes.get(d) ?? 0), 0),
    mounts: [...pending.values()].reduce((s, e) => s + e.repos.length, 0) - needUpload.length,
  });

  const failed = new Map<string, string>();
  // Mounts for blobs whose bytes are already in the registry need no read of the tar.
  for (const [digest, source] of sources) {
    const e = pending.get(digest);
    if (e) await spread(client, registry, digest, source, e, result);
  }

  // 2. One pass over the tar, only when something must be uploaded or a manifest pushed.
  const manifests = new Map<string, Buffer>();
  const wantedManifests = new Set(todo.flatMap((p) => p.manifests));
  if (todo.length > 0) {
    result.readBundle = true;
    const retry = new Set<string>();
    await streamBlobs(path, async (digest, size, chunks) => {
      if (wantedManifests.has(digest)) {
        const bytes = await readSmall(chunks(), digest, size);
        if (bytes) manifests.set(digest, bytes);
        else ev.blobFailed?.(digest, 'manifest damaged in the bundle');
        return;
      }
      const e = pending.get(digest);
      if (!e || e.repos.length === 0) return;
      const first = e.repos[0]!;
      try {
        await uploadFromTar(client, registry, first, digest, size, chunks, ev);
        result.uploaded.blobs++;
        result.uploaded.bytes += size;
        e.repos.shift();
        await spread(client, registry, digest, first, e, result);
        if (e.repos.length > 0) retry.add(digest);
      } catch (err) {
        if (err instanceof DigestMismatchError || (err instanceof RegistryError && err.kind === 'digest')) {
          failed.set(digest, `damaged in the bundle: ${err.message}`);
          ev.blobFailed?.(digest, failed.get(digest)!);
          return;
        }
        if (err instanceof RegistryError && err.retryable) {
          retry.add(digest);
          return;
        }
        throw err;
      }
    }, onRejected);
    // Uploads cut short by a transient fault (or mounts the registry refused) get
    // one more targeted pass: the bytes are only in the tar, which is read again.
    if (retry.size > 0) {
      await streamBlobs(path, async (digest, size, chunks) => {
        const e = pending.get(digest);
        if (!retry.has(digest) || !e) return;
        while (e.repos.length > 0) {
          const repo = e.repos[0]!;
          try {
            await uploadFromTar(client, registry, repo, digest, size, chunks, ev);
          } catch (err) {
            failed.set(digest, (err as Error).message);
            ev.blobFailed?.(digest, (err as Error).message);
            return;
          }
          result.uploaded.blobs++;
          result.uploaded.bytes += size;
          e.repos.shift();
          await spread(client, registry, digest, repo, e, result);
          if (e.repos.length > 0) break; // bytes consumed; a third pass is not worth it
        }
        if (e.repos.length > 0) failed.set(digest, `could not be placed in ${e.repos.join(', ')}`);
      }, () => undefined);
    }
    for (const [digest, e] of pending) {
      if (e.repos.length > 0 && !failed.has(digest) && !waiting.has(digest)) failed.set(digest, `not in the bundle or not uploaded to ${e.repos.join(', ')}`);
    }
  }

  // 3. Manifests, then tags, only for images with every blob in place.
  for (const p of todo) {
    const needs = [...new Set(p.blobs.filter((d) => waiting.has(d) && !failed.has(d)).map((d) => waiting.get(d)!))].sort((a, b) => a - b);
    if (needs.length > 0 && !p.blobs.some((d) => failed.has(d))) {
      result.images.push({ reference: p.image.reference, target: target(registry, p), digest: p.image.digest, status: 'waiting', reason: `needs volume${needs.length > 1 ? 's' : ''} ${needs.join(', ')}` });
      ev.imageDone?.(p, 'waiting');
      continue;
    }
    const broken = p.blobs.filter((d) => failed.has(d));
    const missingManifest = p.manifests.find((d) => !manifests.has(d));
    if (broken.length > 0 || missingManifest) {
      const reason = broken.length > 0 ? `blob ${broken[0]} ${failed.get(broken[0]!)}` : `manifest ${missingManifest} is missing from the bundle or damaged`;
      result.images.push({ reference: p.image.reference, target: target(registry, p), digest: p.image.digest, status: 'failed', reason });
      ev.imageDone?.(p, 'failed');
      continue;
    }
    try {
      for (const d of p.manifests) await client.putManifest(registry, p.repository, d, manifests.get(d)!, plan.mediaTypes.get(d)!);
      if (p.tag !== undefined) await client.putManifest(registry, p.repository, p.tag, manifests.get(p.image.digest)!, p.image.mediaType);
      result.images.push({ reference: p.image.reference, target: target(registry, p), digest: p.image.digest, status: 'imported' });
      ev.imageDone?.(p, 'imported');
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      let reason = err.message;
      if (err.kind === 'not-found' && p.image.absent.length > 0) {
        reason = `the registry refuses the index because ${p.image.absent.length} platform manifest(s) were left out at export (--platform); nothing was tagged. Re-export without --platform for this registry, or import into a registry that accepts sparse indexes`;
      }
      result.images.push({ reference: p.image.reference, target: target(registry, p), digest: p.image.digest, status: 'failed', reason });
      ev.imageDone?.(p, 'failed');
    }
  }
  return result;
}

/** A delta was imported into a registry that lacks what it was made against. */
export class MissingDependenciesError extends Error {
  override name = 'MissingDependenciesError';
  constructor(
    readonly digests: string[],
    plan: ImportPlan,
  ) {
    const users = (d: string) => plan.images.filter((p) => p.blobs.includes(d)).map((p) => p.image.reference);
    const shown = digests.slice(0, 5).map((d) => `  - ${d} (needed by ${users(d).join(', ')})`);
    super(
      `this delta bundle depends on ${digests.length} blob(s) the registry does not hold; nothing was pushed. Import the bundle it was made against first (or export a full bundle):\n${shown.join('\n')}${digests.length > 5 ? `\n  … and ${digests.length - 5} more` : ''}`,
    );
  }
}

function target(registry: string, p: PlannedImage): string {
  return `${registry}/${p.repository}${p.tag !== undefined ? `:${p.tag}` : `@${p.image.digest}`}`;
}

/** Cross-repository mounts from `source` into every repository still lacking the blob. */
async function spread(client: RegistryClient, registry: string, digest: string, source: string, e: Pending, result: ImportResult): Promise<void> {
  const left: string[] = [];
  for (const repo of e.repos) {
    if (await client.mountBlob(registry, repo, digest, source)) result.mounted++;
    else left.push(repo);
  }
  e.repos = left;
}

/**
 * Uploads one tar entry. The bytes are hashed on their way out; on a mismatch
 * the body fails before it completes, and the registry, which checks `?digest=`
 * itself, would refuse it anyway: a damaged blob never appears under its digest.
 * The entry can be read once, so a retry of this upload is left to a later pass.
 */
async function uploadFromTar(client: RegistryClient, registry: string, repo: string, digest: string, size: number, chunks: () => AsyncGenerator<Buffer>, ev: ImportEvents): Promise<void> {
  let used = false;
  let mismatch: DigestMismatchError | undefined;
  async function* verified(): AsyncGenerator<Buffer> {
    const hash = createHash(digestAlgorithm(digest));
    let seen = 0;
    for await (const c of chunks()) {
      hash.update(c);
      seen += c.length;
      ev.bytes?.(c.length);
      // A copy: the reader reuses its buffers, and the socket writes later.
      yield Buffer.from(c);
    }
    const actual = { digest: `${digestAlgorithm(digest)}:${hash.digest('hex')}`, size: seen };
    if (actual.digest !== digest || seen !== size) throw (mismatch = new DigestMismatchError({ digest, size }, actual));
  }
  try {
    await client.uploadBlob(registry, repo, digest, size, () => {
      if (used) throw new RegistryError('network', `upload of ${digest} cannot be retried from the bundle stream`, undefined, true);
      used = true;
      return Readable.from(verified(), { objectMode: false });
    });
  } catch (err) {
    throw mismatch ?? err;
  }
  if (mismatch) throw mismatch;
}

/** A manifest's bytes, or undefined when they do not match their digest. */
async function readSmall(chunks: AsyncIterable<Buffer>, digest: string, size: number): Promise<Buffer | undefined> {
  if (size > MAX_MANIFEST_BYTES) return undefined;
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  const bytes = Buffer.concat(parts);
  return bytes.length === size && sha256Digest(bytes) === digest ? bytes : undefined;
}

/**
 * Iterates the tar's blob entries. Refused entries (never extracted) are
 * reported and skipped; structural damage (truncation) ends the import before
 * any manifest is pushed.
 */
async function streamBlobs(path: string, visit: (digest: string, size: number, chunks: () => AsyncGenerator<Buffer>) => Promise<void>, onRejected: (name: string, reason: string) => void): Promise<void> {
  for await (const entry of readBundle(path)) {
    if (entry.type === 'blob') await visit(entry.digest, entry.size, entry.chunks);
    else if (entry.type === 'rejected') onRejected(entry.name, entry.reason);
  }
}
