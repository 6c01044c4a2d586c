import {
  checkSignatures,
  failsPolicy,
  type ImageSignatures,
  type SignatureOptions,
} from '../signatures/check-images.js';
import { SignaturePolicyRefusal } from '../signatures/errors.js';
import { registrySignatureSource } from '../signatures/registry-source.js';
import type { ListedReference } from '../reference/image-list.js';
import { formatReference, manifestSelector, type Reference } from '../reference/reference.js';
import { discoverArtifacts } from './artifacts.js';
import { resolveBuilt, type BlobOrigin } from './built-artifacts.js';
import type { BuiltArtifact } from '../oci/artifact.js';
import type { Platform } from '../oci/descriptor.js';
import { formatPlatform } from '../oci/platform.js';
import { resolveImage, type ManifestFetcher, type ManifestNode, type ResolvedImage } from '../oci/resolve.js';
import { isIndexType } from '../oci/media-types.js';
import { DigestMismatchError } from '../oci/digest.js';
import type { RegistryClient } from '../registry/client.js';
import type { Repository } from '../registry/repository.js';
import { RegistryError } from '../registry/errors.js';
import { withRetry } from '../registry/retry.js';
import { mapSettled } from '../util/pool.js';
import type { BlobStore } from './blob-store.js';
import {
  IMAGE_BOUNDS,
  MAX_ARTIFACTS_PER_IMAGE,
  MAX_BLOBS,
  MAX_IMAGES,
  ROLE_ORDER,
  type BlobRecord,
  type ImageRecord,
  type PlatformRecord,
} from '../bundle/format.js';
import { printable } from '../util/text.js';
import { isDiskFull } from '../util/disk-full.js';

export interface CollectEvents {
  resolved?(ref: string, image: ImageRecord): void;
  /** Something optional was left out (artifacts that could not be looked up, or past a bound); one line, escaped. */
  warn?(message: string): void;
  blobQueued?(total: { count: number; bytes: number; cached: number; cachedBytes: number }): void;
  blobProgress?(bytes: number): void;
  blobDone?(digest: string, size: number, fromCache: boolean): void;
  /** With a signature policy: each image's verdict, before any blob is fetched. */
  signatures?(results: ImageSignatures[]): void;
}

export interface CollectOptions {
  /**
   * Called once the manifests are known and before any layer is fetched, with
   * the bundle's size, what must still be downloaded and the bundle's content:
   * the place to refuse early (disk space, a volume size that cannot work).
   */
  beforeDownload?(
    sizes: { bundleBytes: number; downloadBytes: number },
    collected: Pick<CollectedBundle, 'images' | 'blobs'>,
  ): Promise<void>;
  platforms?: Platform[];
  /** Also carry signatures, attestations, SBOMs and referrers of every image. */
  artifacts?: boolean;
  /** Charts and files built by this tool, carried beside the images (never checked against a signature policy). */
  built?: readonly BuiltArtifact[];
  /**
   * A signature policy every image must satisfy, checked from the signatures
   * found (with `artifacts`) before a blob is fetched: an image that fails
   * refuses the export (SignaturePolicyRefusal), nothing written.
   */
  signatures?: SignatureOptions;
  /**
   * Configs and layers the isolated side already holds (a delta): recorded as
   * external, neither downloaded nor written. The value names a repository known
   * to hold the blob, when the source says.
   */
  exclude?: Map<string, { mountFrom?: string }>;
  concurrency: number;
  events?: CollectEvents;
  /**
   * Stop once every manifest is resolved and every signature checked, after
   * `beforeDownload` has seen the sizes: no blob is fetched, nothing is stored
   * but the manifests `store.putBytes` is given (export --dry-run).
   */
  planOnly?: boolean;
  /**
   * Started as soon as every blob is known, before the first layer is fetched,
   * to use blobs while the others download (the bundle writer, in tar order;
   * downloads go in that order too). `ready(digest)` settles once the blob is
   * in the store, and rejects if it cannot be fetched; `refetch(digest)`
   * downloads a blob again (a consumer that found its bytes damaged). When
   * `consume` fails, downloads not yet started are dropped.
   */
  consume?(
    collected: Pick<CollectedBundle, 'images' | 'blobs'>,
    ready: (digest: string) => Promise<void>,
    refetch: (digest: string) => Promise<void>,
  ): Promise<void>;
}

export interface CollectedBundle {
  images: ImageRecord[];
  /** Every blob to put in the tar, in tar order. */
  blobs: BlobRecord[];
  /** Configs and layers downloaded in this run vs found verified in the store (cache, or a partial bundle resumed). */
  fetched: { blobs: number; bytes: number };
  cached: { blobs: number; bytes: number };
}

/**
 * One or more references failed to resolve or download; every failure is
 * listed, one line each. Messages may quote what a registry sent, so each is
 * escaped here, whatever built it.
 */
export class CollectError extends Error {
  override name = 'CollectError';
  constructor(readonly failures: Array<{ what: string; message: string }>) {
    const lines = failures.map((f) => printable(f.message, MAX_FAILURE_LENGTH));
    super(lines.length === 1 ? lines[0]! : `${lines.length} failures:\n${lines.map((l) => `  - ${l}`).join('\n')}`);
  }
}

const MAX_FAILURE_LENGTH = 1000;

/**
 * The connected side's work: resolve every reference to its manifests, then
 * fetch every distinct config and layer once into `store`, verified. Nothing is
 * written under the bundle's name here.
 */
export async function collectBundle(
  refs: ListedReference[],
  client: RegistryClient,
  store: BlobStore,
  opts: CollectOptions,
): Promise<CollectedBundle> {
  if (refs.length > MAX_IMAGES)
    throw new CollectError([
      {
        what: 'images',
        message: `${refs.length} images, more than the ${MAX_IMAGES} a bundle holds; split the list into several bundles`,
      },
    ]);
  const { images, blobs } = await resolveAndRecord(refs, client, store, opts);
  markExternal(blobs, opts.exclude);
  const payload = [...blobs.values()].filter((b) => (b.role === 'layer' || b.role === 'config') && !b.external);
  const ordered = tarOrder(blobs);
  images.sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
  const content = { images, blobs: ordered.map(blobRecord) };
  if (opts.planOnly) return plannedOnly(blobs, payload, content, opts);
  await store.prepare?.(content);
  const missing = await missingBlobs(payload, store, opts.concurrency);
  const cachedBytes = await announceDownloads(blobs, payload, missing, content, opts);
  // Tar order, so that a consumer writing the tar follows right behind the downloads.
  const position = new Map(ordered.map((b, i) => [b.digest, i]));
  missing.sort((a, b) => position.get(a.digest)! - position.get(b.digest)!);
  await fetchMissing(missing, content, store, client, opts);
  const missingBytes = missing.reduce((s, b) => s + b.size, 0);
  return {
    images,
    blobs: content.blobs,
    fetched: { blobs: missing.length, bytes: missingBytes },
    cached: { blobs: payload.length - missing.length, bytes: cachedBytes },
  };
}

/** A dry run: the sizes checked as a real run would check them, and what it would fetch. */
async function plannedOnly(
  blobs: Map<string, PendingBlob>,
  payload: PendingBlob[],
  content: Content,
  opts: CollectOptions,
): Promise<CollectedBundle> {
  const cachedBytes = await announceDownloads(blobs, payload, payload, content, opts);
  const bytes = payload.reduce((s, b) => s + b.size, 0);
  return { ...content, fetched: { blobs: payload.length, bytes: bytes - cachedBytes }, cached: { blobs: 0, bytes: 0 } };
}

/**
 * Phases 1 to 3. The resolved images (every manifest, parsed and as bytes) are
 * dropped on return: only their records are kept through the downloads.
 */
async function resolveAndRecord(
  refs: ListedReference[],
  client: RegistryClient,
  store: BlobStore,
  opts: CollectOptions,
): Promise<{ images: ImageRecord[]; blobs: Map<string, PendingBlob> }> {
  const all = await resolveAll(refs, opts.platforms, client, store, opts.concurrency);
  if (opts.artifacts) for (const a of await resolveArtifacts(all, client, store, opts)) all.push(a);
  const built = await resolveCarried(opts.built ?? [], store);
  const recorded = recordImages([...all, ...built], opts.events);
  if (opts.signatures) await requireSignatures(recorded.images, all, opts.signatures, opts.events);
  return recorded;
}

/** Charts and files: resolved like images, their manifests stored, their records marked as carried. */
async function resolveCarried(built: readonly BuiltArtifact[], store: BlobStore): Promise<ResolvedItem[]> {
  const resolved = await resolveBuilt(built);
  const out: ResolvedItem[] = [];
  for (const r of resolved) {
    for (const m of r.image.manifests) await store.putBytes(m.digest, m.bytes);
    out.push({
      item: { ref: r.ref, name: r.name, origins: [{ source: r.artifact.carried.source }] },
      repo: r.origin,
      image: r.image,
      carried: r.artifact.carried,
    });
  }
  return out;
}

/** Every image against the policy, from the signatures just resolved; the export stops at the first failure listed. */
async function requireSignatures(
  images: ImageRecord[],
  all: RegistryItem[],
  policy: SignatureOptions,
  events: CollectEvents | undefined,
): Promise<void> {
  // Every manifest of every artifact: a referrers index lists its referrer manifests as children.
  const signatures = all
    .filter((a) => a.artifact)
    .flatMap((a) => a.image.manifests.map((m) => ({ digest: m.digest, parsed: m.parsed, repo: a.repo })));
  const results = await checkSignatures(images, registrySignatureSource(signatures), policy);
  events?.signatures?.(results);
  const failed = results.filter(failsPolicy);
  if (failed.length > 0) throw new SignaturePolicyRefusal(failed, results.length);
  recordSigners(images, results);
}

/** Who signed each verified image goes into its record, so the bundle says it (inspect shows it). */
function recordSigners(images: ImageRecord[], results: ImageSignatures[]): void {
  const verified = new Map(results.filter((r) => r.verified).map((r) => [r.reference, r]));
  for (const image of images) {
    const r = verified.get(image.reference);
    if (!r?.verified || !r.rule) continue;
    const { signer, issuer, logIndex, integratedTime, signature } = r.verified;
    // A certificate's subject and issuer are the signer's strings: escaped and bounded as the metadata requires.
    image.signed = {
      rule: r.rule,
      signer: printable(signer, 1000),
      ...(issuer ? { issuer: printable(issuer, 1000) } : {}),
      ...(logIndex !== undefined ? { logIndex } : {}),
      ...(integratedTime !== undefined ? { integratedTime } : {}),
      signature,
    };
  }
}

/** An image (or artifact, chart, file) resolved, with where its blobs are read from. */
interface ResolvedItem {
  item: ListedReference;
  repo: BlobOrigin;
  image: ResolvedImage;
  artifact?: ImageRecord['artifact'];
  carried?: ImageRecord['carried'];
}

/** An image or artifact resolved from a registry. */
interface RegistryItem extends ResolvedItem {
  repo: Repository;
}

/** A blob while the bundle is collected: its record, its height in the tree, and where it is fetched from. */
type PendingBlob = BlobRecord & { level: number; source: BlobOrigin };

type Content = Pick<CollectedBundle, 'images' | 'blobs'>;

/**
 * Phase 1: every reference resolved to its manifests, each manifest put in the
 * store. Every reference that fails is listed, in one error.
 */
async function resolveAll(
  list: ListedReference[],
  platforms: Platform[] | undefined,
  client: RegistryClient,
  store: BlobStore,
  concurrency: number,
): Promise<RegistryItem[]> {
  const out = await mapSettled(list, concurrency, async (item): Promise<RegistryItem> => {
    const { ref } = item;
    const repo = client.repository(ref.registry, ref.repository);
    const fetch: ManifestFetcher = (sel, _declared, maxBytes) => repo.getManifest(sel, maxBytes);
    const image = await resolveImage(manifestSelector(ref), fetch, platforms, formatReference(ref), IMAGE_BOUNDS);
    for (const m of image.manifests) await store.putBytes(m.digest, m.bytes);
    return { item, repo, image };
  });
  const failures = out.flatMap((r, i) =>
    r.ok ? [] : [{ what: list[i]!.name, message: messageOf(r.error, list[i]!.name) }],
  );
  if (failures.length > 0) throw new CollectError(failures);
  return out.map((r) => (r as { ok: true; value: RegistryItem }).value);
}

/** Phase 2: the signatures, attestations, SBOMs and referrers of the images, resolved like images (every platform). */
async function resolveArtifacts(
  images: RegistryItem[],
  client: RegistryClient,
  store: BlobStore,
  opts: CollectOptions,
): Promise<RegistryItem[]> {
  const extra = await findArtifacts(images, opts.concurrency, (m) => opts.events?.warn?.(m));
  const resolved = await resolveAll(
    extra.map((e) => e.item),
    undefined,
    client,
    store,
    opts.concurrency,
  );
  return extra.map((e, i) => ({ ...resolved[i]!, artifact: e.artifact }));
}

/**
 * Phase 3: one record per image, in list order (each reported as resolved), and
 * every distinct blob once, fetched from the first image that needs it.
 */
function recordImages(
  all: ResolvedItem[],
  events: CollectEvents | undefined,
): { images: ImageRecord[]; blobs: Map<string, PendingBlob> } {
  const images: ImageRecord[] = [];
  const blobs = new Map<string, PendingBlob>();
  for (const { item, repo: source, image, artifact, carried } of all) {
    for (const b of image.blobs) {
      if (!blobs.has(b.digest))
        blobs.set(b.digest, { digest: b.digest, size: b.size, mediaType: b.mediaType, role: b.role, level: 0, source });
    }
    for (const m of image.manifests) {
      if (!blobs.has(m.digest)) {
        blobs.set(m.digest, {
          digest: m.digest,
          size: m.bytes.length,
          mediaType: m.mediaType,
          role: isIndexType(m.mediaType) ? 'index' : 'manifest',
          level: m.level,
          source,
        });
      }
    }
    const record = imageRecord(item.name, item.ref, image);
    if (artifact) record.artifact = artifact;
    if (carried) record.carried = carried;
    images.push(record);
    events?.resolved?.(record.reference, record);
  }
  return { images, blobs };
}

/**
 * Phase 4: the bundle's bound on blobs, then the configs and layers a delta
 * leaves out marked external (with a repository to mount them from, when known).
 */
function markExternal(blobs: Map<string, PendingBlob>, exclude: CollectOptions['exclude']): void {
  if (blobs.size > MAX_BLOBS) {
    throw new CollectError([
      {
        what: 'blobs',
        message: `these images need ${blobs.size} blobs, more than the ${MAX_BLOBS} a bundle holds; split the list into several bundles`,
      },
    ]);
  }
  for (const b of blobs.values()) {
    const ex = (b.role === 'layer' || b.role === 'config') && exclude?.get(b.digest);
    if (ex) {
      b.external = true;
      if (ex.mountFrom) b.mountFrom = ex.mountFrom;
    }
  }
}

/** Phase 5: every blob in tar order. */
function tarOrder(blobs: Map<string, PendingBlob>): PendingBlob[] {
  // Configs and layers largest first: they download in this order, so a big layer never starts
  // last and runs alone, and the writer following behind is left with small ones at the end.
  const bySize = (a: BlobRecord, b: BlobRecord) => (ROLE_ORDER[a.role] === 0 ? b.size - a.size : 0);
  return [...blobs.values()].sort(
    (a, b) =>
      ROLE_ORDER[a.role] - ROLE_ORDER[b.role] ||
      a.level - b.level ||
      bySize(a, b) ||
      (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0),
  );
}

/** The blob as the metadata records it. */
function blobRecord({ digest, size, mediaType, role, external, mountFrom }: PendingBlob): BlobRecord {
  return { digest, size, mediaType, role, ...(external ? { external } : {}), ...(mountFrom ? { mountFrom } : {}) };
}

/** Phase 6: the configs and layers of `payload` the store does not hold intact yet. */
async function missingBlobs(payload: PendingBlob[], store: BlobStore, concurrency: number): Promise<PendingBlob[]> {
  const cachedFlags = await mapSettled(payload, concurrency, (b) => store.has(b.digest, b.size));
  return payload.filter((_, i) => {
    const r = cachedFlags[i]!;
    return !(r.ok && r.value);
  });
}

/**
 * Phase 7: the sizes given to `beforeDownload` (the last chance to refuse), then
 * the downloads announced and the blobs already held reported done. Returns the
 * bytes already held.
 */
async function announceDownloads(
  blobs: Map<string, PendingBlob>,
  payload: PendingBlob[],
  missing: PendingBlob[],
  content: Content,
  opts: CollectOptions,
): Promise<number> {
  const missingSet = new Set(missing);
  const payloadBytes = payload.reduce((s, b) => s + b.size, 0);
  const cachedBytes = payloadBytes - missing.reduce((s, b) => s + b.size, 0);
  const manifestBytes = [...blobs.values()]
    .filter((b) => b.role === 'manifest' || b.role === 'index')
    .reduce((s, b) => s + b.size, 0);
  await opts.beforeDownload?.(
    { bundleBytes: payloadBytes + manifestBytes, downloadBytes: payloadBytes - cachedBytes },
    content,
  );
  opts.events?.blobQueued?.({
    count: payload.length,
    bytes: payloadBytes,
    cached: payload.length - missing.length,
    cachedBytes,
  });
  for (const b of payload) if (!missingSet.has(b)) opts.events?.blobDone?.(b.digest, b.size, true);
  return cachedBytes;
}

/**
 * Phase 8: the missing blobs downloaded in the order given, while the consumer,
 * when there is one, uses each as it arrives. Every blob that cannot be fetched
 * is listed, in one error; then a consumer's failure is thrown.
 */
async function fetchMissing(
  missing: PendingBlob[],
  content: Content,
  store: BlobStore,
  client: RegistryClient,
  opts: CollectOptions,
): Promise<void> {
  const arrivals = new Map(missing.map((b) => [b.digest, deferred()]));
  let consumerFailed = false;
  const downloads = mapSettled(missing, opts.concurrency, async (b) => {
    const arrival = arrivals.get(b.digest)!;
    try {
      if (consumerFailed) throw new Dropped();
      await downloadBlob(client, store, b.source, b, opts);
      arrival.resolve();
    } catch (err) {
      arrival.reject(err);
      throw err;
    }
    opts.events?.blobDone?.(b.digest, b.size, false);
  });
  const refetch = async (digest: string) => {
    const b = missing.find((m) => m.digest === digest);
    if (!b) throw new Error(`${digest} was not downloaded in this run`);
    await downloadBlob(client, store, b.source, b, opts);
  };
  const consumed = opts.consume
    ? opts
        .consume(content, (digest) => arrivals.get(digest)?.promise ?? Promise.resolve(), refetch)
        .then(
          () => undefined,
          (err: unknown) => {
            consumerFailed = true;
            return { error: err };
          },
        )
    : Promise.resolve(undefined);
  const [fetched, consumerError] = await Promise.all([downloads, consumed]);
  const blobFailures = fetched.flatMap((r, i) => {
    if (r.ok || r.error instanceof Dropped) return [];
    const b = missing[i]!;
    const users = content.images.filter((im) => im.blobs.includes(b.digest)).map((im) => im.reference);
    return [
      { what: b.digest, message: `${b.role} ${b.digest} (${users.join(', ')}): ${messageOf(r.error, b.digest)}` },
    ];
  });
  if (blobFailures.length > 0) throw new CollectError(blobFailures);
  if (consumerError) throw consumerError.error;
}

/** A download not started because the consumer of the blobs gave up. */
class Dropped extends Error {}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A consumer that stopped early never awaits the rest: their failures are reported by the downloads.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Streams one blob into the store; a broken transfer or a digest mismatch is retried as a whole. */
async function downloadBlob(
  client: RegistryClient,
  store: BlobStore,
  repo: BlobOrigin,
  b: BlobRecord,
  opts: CollectOptions,
): Promise<void> {
  const what = `blob ${b.digest} of ${repo.registry}/${repo.name}`;
  const report = (err: RegistryError, attempt: number, delayMs: number) =>
    client.reportRetry({ what, attempt, delayMs, reason: err.message });
  await withRetry(
    client.retryPolicy,
    async () => {
      const { body, size } = await repo.openBlob(b.digest);
      if (size !== undefined && size !== b.size) {
        body.destroy();
        throw new RegistryError('digest', `registry announced ${size} bytes, the manifest says ${b.size}`, {
          status: 200,
          retryable: true,
        });
      }
      let sent = 0;
      try {
        await store.put(b.digest, b.size, body, (n) => {
          sent += n;
          opts.events?.blobProgress?.(n);
        });
      } catch (err) {
        opts.events?.blobProgress?.(-sent);
        if (err instanceof DigestMismatchError)
          throw new RegistryError('digest', `content does not match: ${err.message}`, { status: 200, retryable: true });
        if (err instanceof RegistryError) throw err;
        if (isDiskFull(err)) throw err;
        throw new RegistryError('network', `transfer failed: ${(err as Error).message}`, { retryable: true });
      }
    },
    report,
  );
}

/**
 * Signatures, attestations, SBOMs and referrers of every carried manifest (the
 * top one, and each carried platform manifest of an index), as references to
 * resolve like images. Found once per repository and digest. Finding them is
 * optional: an image whose lookup fails gets a warning and none.
 *
 * Past MAX_ARTIFACTS_PER_IMAGE for one image, the first ones in discovery order
 * are carried (signatures, attestations and SBOMs by tag first, then referrers
 * by digest), so the same registry content gives the same bundle, and the rest
 * are named in a warning; past MAX_IMAGES in all, the same.
 */
async function findArtifacts(
  all: RegistryItem[],
  concurrency: number,
  warn: (message: string) => void,
): Promise<Array<{ item: ListedReference; artifact: NonNullable<ImageRecord['artifact']> }>> {
  const out = new Map<string, { item: ListedReference; artifact: NonNullable<ImageRecord['artifact']> }>();
  const names = new Set(all.map((a) => a.item.name));
  // Images probed in parallel (a few round trips each); results taken in list order.
  const found = await mapSettled(all, concurrency, ({ item, repo, image }) => {
    const subjects = [
      ...new Set([
        image.root.digest,
        ...image.children.filter((c) => c.carried && !c.attestationFor).map((c) => c.descriptor.digest),
      ]),
    ];
    return discoverArtifacts(repo, subjects, concurrency, item.name);
  });
  for (const [i, { item }] of all.entries()) {
    const { registry, repository } = item.ref;
    const r = found[i]!;
    if (!r.ok) {
      warn(
        `signatures of ${printable(item.name)}: not looked up (${printable(r.error instanceof Error ? r.error.message : String(r.error))}); the export goes on without them`,
      );
      continue;
    }
    for (const w of r.value.warnings) warn(w);
    let carried = 0;
    let leftOut = 0;
    for (const f of r.value.found) {
      const ref: Reference = f.selector.startsWith('sha256:')
        ? { registry, repository, digest: f.selector }
        : { registry, repository, tag: f.selector };
      const name = formatReference(ref);
      if (out.has(name) || names.has(name)) continue;
      if (carried >= MAX_ARTIFACTS_PER_IMAGE || names.size + out.size >= MAX_IMAGES) {
        leftOut++;
        continue;
      }
      carried++;
      out.set(name, {
        item: { ref, name, origins: [{ source: `${f.kind} of ${item.name}` }] },
        artifact: { kind: f.kind, subject: f.subject, of: item.name },
      });
    }
    if (leftOut > 0) {
      const bound =
        carried >= MAX_ARTIFACTS_PER_IMAGE
          ? `the ${MAX_ARTIFACTS_PER_IMAGE} a bundle carries per image`
          : `the ${MAX_IMAGES} images a bundle holds`;
      warn(
        `${printable(item.name)}: ${carried + leftOut} signatures, attestations and referrers found, more than ${bound}; the first ${carried} are carried, ${leftOut} left out`,
      );
    }
  }
  return [...out.values()];
}

function imageRecord(name: string, ref: ListedReference['ref'], image: ResolvedImage): ImageRecord {
  const root: ManifestNode = image.root;
  const platforms: PlatformRecord[] = image.children.map((c) => ({
    platform: c.descriptor.platform ? formatPlatform(c.descriptor.platform) : 'unknown/unknown',
    digest: c.descriptor.digest,
    mediaType: c.descriptor.mediaType,
    carried: c.carried,
    ...(c.attestationFor ? { attestationFor: c.attestationFor } : {}),
  }));
  const digests = new Set<string>([...image.manifests.map((m) => m.digest), ...image.blobs.map((b) => b.digest)]);
  const sizes = new Map<string, number>([
    ...image.manifests.map((m) => [m.digest, m.bytes.length] as const),
    ...image.blobs.map((b) => [b.digest, b.size] as const),
  ]);
  const list = [...digests].sort();
  return {
    reference: name,
    registry: ref.registry,
    repository: ref.repository,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    digest: root.digest,
    mediaType: root.mediaType,
    size: root.bytes.length,
    platforms,
    absent: image.children.filter((c) => !c.carried).map((c) => c.descriptor.digest),
    blobs: list,
    bytes: list.reduce((s, d) => s + (sizes.get(d) ?? 0), 0),
  };
}

function messageOf(err: unknown, what: string): string {
  if (err instanceof Error)
    return err.message.includes(what) || err instanceof CollectError ? err.message : `${what}: ${err.message}`;
  return `${what}: ${String(err)}`;
}
