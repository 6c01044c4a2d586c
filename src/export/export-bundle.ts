import type { SignatureOptions } from '../signatures/check-images.js';
import type { BuiltArtifact } from '../oci/artifact.js';
import { favourSmallHeap } from '../util/small-heap.js';
import { rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { BundleMetadata } from '../bundle/format.js';
import { buildMetadata } from '../bundle/metadata.js';
import { blobEntries } from '../bundle/volume-content.js';
import { forVolume, volumeLayout, volumeName } from '../bundle/volumes.js';
import type { Platform } from '../oci/descriptor.js';
import { formatPlatform } from '../oci/platform.js';
import type { ListedReference } from '../reference/image-list.js';
import type { RegistryClient } from '../registry/client.js';
import { formatBytes } from '../util/bytes.js';
import { isDiskFull } from '../util/disk-full.js';
import { onInterrupt, setResumeHint } from '../util/interrupt.js';
import { TOOL } from '../version.js';
import { BlobCache, defaultCacheDir } from './blob-cache.js';
import type { BlobStore } from './blob-store.js';
import { writeBundle, type WriteOptions } from './cache-writer.js';
import { collectBundle, type CollectedBundle, type CollectEvents, type CollectOptions } from './collect.js';
import { ensureSpace } from './disk-space.js';
import { InPlaceWriter, keepsHoles } from './in-place-writer.js';
import { activePartials, type WriteResult } from './publish.js';
import { planVolumes } from './volume-plan.js';

/**
 * How an export writes its bundle, decided once from the options:
 * - `in-place`: one bundle, each blob downloaded straight to its place in it, every byte written once;
 * - `cache`: blobs go to the cache in `dir` first, and the bundle is written from it, in order, right
 *   behind the downloads: asked for (`reason: 'asked'`), or because the output's filesystem cannot
 *   leave holes in a file (`'no-holes'`);
 * - `volumes`: blobs go to the cache in `cacheDir`, and the volumes of at most `size` bytes are written
 *   once every blob is in (a blob cut into parts is hashed part by part to plan them).
 */
export type ExportMode =
  | { kind: 'in-place' }
  | { kind: 'cache'; dir: string; reason: 'asked' | 'no-holes' }
  | { kind: 'volumes'; size: number; cacheDir: string };

/**
 * The mode for writing `output`, given the cache asked for and the volume size, if any.
 * One bundle is written in one pass, each blob straight to its place; a cache (asked for,
 * or needed by volume sets, which are planned from every blob) costs a second write of each byte.
 */
export async function chooseExportMode(
  output: string,
  askedCache: string | undefined,
  volumeSize: number | undefined,
): Promise<ExportMode> {
  if (volumeSize !== undefined) return { kind: 'volumes', size: volumeSize, cacheDir: askedCache ?? defaultCacheDir() };
  if (askedCache !== undefined) return { kind: 'cache', dir: askedCache, reason: 'asked' };
  // A filesystem without holes (FAT, exFAT: USB sticks) zero-fills a file written out of order
  // before the first byte lands: there the bundle is written in order, from the cache.
  if (!(await keepsHoles(dirname(output)))) return { kind: 'cache', dir: defaultCacheDir(), reason: 'no-holes' };
  return { kind: 'in-place' };
}

/** Everything one export needs, options already parsed and checked. */
export interface ExportRequest {
  refs: ListedReference[];
  /** The bundle; volumes are named after it. */
  output: string;
  mode: ExportMode;
  /** Carry only these platforms of multi-arch images; all when absent. */
  platforms?: Platform[];
  concurrency: number;
  /** Downloads of a blob whose bytes turn out damaged in the checksum pass, after the first. */
  retries: number;
  /** Also carry signatures, attestations, SBOMs and referrers of every image. */
  artifacts: boolean;
  /** A signature policy every image must satisfy before a blob is fetched (needs `artifacts`). */
  signatures?: SignatureOptions;
  /** Charts and files built by this tool, carried beside the images. */
  built?: readonly BuiltArtifact[];
  /** Configs and layers the isolated side already holds (a delta). */
  exclude: Map<string, { mountFrom?: string }>;
  /** The receipts and bundles a delta is made against, as the metadata names them. */
  deltaAgainst: string[];
  sign?: (metadataBytes: Buffer) => Buffer;
  /** From SOURCE_DATE_EPOCH: the creation time stamped in the bundle. */
  sourceDateEpoch?: number;
}

export interface ExportEvents extends CollectEvents {
  /** The export starts: nothing was requested yet, and an interrupt from now on says how to resume. */
  start?(refs: ListedReference[]): void;
  /** A bundle or a volume starts being written, holding `bytes` of blobs. */
  writing?(path: string, bytes: number): void;
  /** Bytes written to the bundle or volume being written. */
  writeProgress?(bytes: number): void;
  /** Every blob is in; the downloads (and the single bundle written behind them) are over. */
  collected?(): void;
  /** The volume set is planned: `count` volumes of at most `size` bytes. */
  volumesPlanned?(count: number, size: number): void;
  /** One volume of the set is written. */
  volumeWritten?(result: WriteResult): void;
  /** The export failed and kept its partial bundle at `path`, for a rerun to resume from. */
  partialKept?(path: string): void;
}

export interface ExportResult extends CollectedBundle {
  /** The bundle, or every volume of the set in order. */
  written: WriteResult[];
}

/**
 * Exports `request.refs` into a bundle (or a volume set): resolve every image,
 * collect its blobs (into the bundle itself or the cache, as the mode says),
 * write. A partial bundle left by an earlier run of the same export is resumed.
 */
export async function exportBundle(
  client: RegistryClient,
  request: ExportRequest,
  events: ExportEvents = {},
): Promise<ExportResult> {
  favourSmallHeap();
  const writing = writingContext(request, events);
  const target = await openTarget(writing);
  setResumeHint(target.resumeHint);
  const forget = onInterrupt(() => {
    for (const p of activePartials) rmSync(p, { force: true });
  });
  try {
    events.start?.(request.refs);
    const collected = await collectBundle(
      request.refs,
      client,
      target.store,
      collectOptions(request, target, events),
    ).catch(target.failed);
    events.collected?.();
    return { ...collected, written: await target.finish(collected) };
  } finally {
    forget();
  }
}

/**
 * What an export would do, without doing it (`--dry-run`): every manifest
 * resolved, every signature checked against the policy, the space checked
 * for the whole bundle; no blob fetched and nothing written.
 */
export async function planExport(
  client: RegistryClient,
  request: ExportRequest,
  events: ExportEvents = {},
): Promise<CollectedBundle> {
  const nothingKept: BlobStore = {
    putBytes: async () => {},
    has: async () => false,
    put: async () => {
      throw new Error('a dry run fetches no blob');
    },
  };
  return collectBundle(request.refs, client, nothingKept, {
    ...collectOptions(request, { store: nothingKept, resumeHint: '', failed: rethrow, finish: async () => [] }, events),
    planOnly: true,
  });
}

type Content = Pick<CollectedBundle, 'images' | 'blobs'>;

/** What every way of writing shares: the request, how the metadata is built, the write options. */
interface Writing {
  request: ExportRequest;
  events: ExportEvents;
  describe(content: Content): BundleMetadata;
  options: Pick<WriteOptions, 'sign' | 'sourceDateEpoch' | 'onBytes'>;
}

/**
 * Where the blobs go and how the bundle is written from them: one per mode,
 * so the rest of the export does not ask which mode it is in.
 */
interface Target {
  store: BlobStore;
  /** The cache the blobs go through, when there is one: its disk is checked for space too. */
  cacheRoot?: string;
  /** What an interrupted run says about resuming. */
  resumeHint: string;
  /** Refuses, before any download, a bundle that cannot be written this way. */
  check?(content: Content): void;
  /** Writes the bundle right behind the downloads (see `CollectOptions.consume`). */
  consume?: CollectOptions['consume'];
  /** The collection failed: deals with what it leaves behind, then throws. */
  failed(err: unknown): Promise<never>;
  /** Once every blob is in: writes what is left to write; every file written, in order. */
  finish(collected: CollectedBundle): Promise<WriteResult[]>;
}

function writingContext(request: ExportRequest, events: ExportEvents): Writing {
  const { platforms, deltaAgainst, sourceDateEpoch, sign, signatures } = request;
  return {
    request,
    events,
    describe: (c) =>
      buildMetadata(c.images, c.blobs, {
        tool: TOOL,
        platforms: platforms ? platforms.map(formatPlatform) : null,
        deltaAgainst,
        ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
        // The root the signatures were checked against travels with them.
        ...(signatures ? { trustedRoot: { source: signatures.trust.source, json: signatures.trust.json } } : {}),
      }),
    options: {
      ...(sign ? { sign } : {}),
      ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
      onBytes: (n: number) => events.writeProgress?.(n),
    },
  };
}

async function openTarget(writing: Writing): Promise<Target> {
  const mode = writing.request.mode;
  switch (mode.kind) {
    case 'in-place':
      return inPlaceTarget(writing);
    case 'cache':
      return cacheTarget(await openCache(mode.dir), writing);
    case 'volumes':
      return volumesTarget(await openCache(mode.cacheDir), mode.size, writing);
  }
}

async function openCache(dir: string): Promise<BlobCache> {
  const cache = new BlobCache(dir);
  await cache.init();
  return cache;
}

/** One bundle, written while its blobs download, right behind them, each straight to its place. */
function inPlaceTarget(writing: Writing): Target {
  const { output, retries } = writing.request;
  const placed = new InPlaceWriter({ output, describe: writing.describe, ...writing.options });
  const written: WriteResult[] = [];
  return {
    store: placed,
    resumeHint: `rerun the same command to resume from ${placed.partial}`,
    consume: async (c, ready, refetch) => {
      writing.events.writing?.(output, blobBytes(writing.describe(c)));
      written.push(await placed.finish(ready, refetch, retries));
    },
    failed: async (err) => {
      // A partial bundle is what a rerun resumes from, unless the disk is full.
      const full = placed.outOfSpace || isDiskFull(err);
      await placed.abort(!full);
      if (full)
        throw new Error(
          `no space left in ${dirname(output)} while writing ${basename(output)}, which needs ${formatBytes(placed.size)} (partial file removed); free space or choose another -o folder, then rerun`,
        );
      if (placed.started) writing.events.partialKept?.(placed.partial);
      throw err;
    },
    finish: async () => written,
  };
}

/** One bundle, written from the cache in tar order, right behind the downloads into the cache. */
function cacheTarget(cache: BlobCache, writing: Writing): Target {
  const written: WriteResult[] = [];
  return {
    store: cache,
    cacheRoot: cache.root,
    resumeHint: cacheResumeHint(cache),
    consume: async (c, ready) =>
      void written.push(await writeFromCache(cache, writing.request.output, writing.describe(c), writing, ready)),
    failed: rethrow,
    finish: async () => written,
  };
}

/** A volume set, planned from every blob in the cache and written once they are all in. */
function volumesTarget(cache: BlobCache, size: number, writing: Writing): Target {
  return {
    store: cache,
    cacheRoot: cache.root,
    resumeHint: cacheResumeHint(cache),
    // A volume size too small for the metadata and manifests is refused before any download.
    check: (c) => void volumeLayout(writing.describe(c), size),
    failed: rethrow,
    finish: (collected) => writeVolumes(cache, size, collected, writing),
  };
}

async function writeVolumes(
  cache: BlobCache,
  size: number,
  collected: CollectedBundle,
  writing: Writing,
): Promise<WriteResult[]> {
  const volumes = await planVolumes(writing.describe(collected), size, (d) => cache.path(d));
  const count = volumes.volumes!.count;
  writing.events.volumesPlanned?.(count, size);
  const written: WriteResult[] = [];
  for (let i = 1; i <= count; i++) {
    const result = await writeFromCache(cache, volumeName(writing.request.output, i), forVolume(volumes, i), writing);
    written.push(result);
    writing.events.volumeWritten?.(result);
  }
  return written;
}

function writeFromCache(
  cache: BlobCache,
  path: string,
  metadata: BundleMetadata,
  writing: Writing,
  ready?: (digest: string) => Promise<void>,
): Promise<WriteResult> {
  writing.events.writing?.(path, blobBytes(metadata));
  return writeBundle(cache, metadata, { output: path, ...writing.options, ...(ready ? { ready } : {}) });
}

function collectOptions(request: ExportRequest, target: Target, events: ExportEvents): CollectOptions {
  return {
    ...(request.platforms ? { platforms: request.platforms } : {}),
    concurrency: request.concurrency,
    artifacts: request.artifacts,
    ...(request.built && request.built.length > 0 ? { built: request.built } : {}),
    ...(request.signatures ? { signatures: request.signatures } : {}),
    exclude: request.exclude,
    beforeDownload: async (sizes, c) => {
      target.check?.(c);
      await ensureSpace(dirname(request.output), target.cacheRoot, sizes);
    },
    ...(target.consume ? { consume: target.consume } : {}),
    events,
  };
}

function cacheResumeHint(cache: BlobCache): string {
  return `rerun the same command to resume; verified blobs are kept in ${cache.root}`;
}

/** The blob bytes a bundle (or volume) holds: what its write progress counts. */
function blobBytes(metadata: BundleMetadata): number {
  return blobEntries(metadata).reduce((s, e) => s + e.size, 0);
}

async function rethrow(err: unknown): Promise<never> {
  throw err;
}
