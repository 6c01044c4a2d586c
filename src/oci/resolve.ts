import { InvalidDocumentError, type Descriptor, type Platform } from './descriptor.js';
import { imageBlobs, MAX_MANIFEST_BYTES, parseManifest, type ParsedManifest } from './manifest.js';
import { attestationTarget, formatPlatform, platformMatches } from './platform.js';
import { printable } from '../util/text.js';

/** A manifest or index as fetched: its exact bytes are what gets stored. */
export interface ManifestNode {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  parsed: ParsedManifest;
  /** Height in the tree: 1 for an image manifest, 1 + the highest child for an index. */
  level: number;
}

export interface ResolvedImage {
  root: ManifestNode;
  /** Every manifest and index carried, root included, each once, children before their indexes. */
  manifests: ManifestNode[];
  /** Configs and layers of the carried manifests, each once, in the order first met. */
  blobs: Array<Descriptor & { role: 'config' | 'layer' }>;
  children: Array<{ descriptor: Descriptor; carried: boolean; attestationFor?: string }>;
}

/**
 * Fetches one manifest by tag or digest. `maxBytes`, when given, is the size
 * the parent index declares: a fetcher may refuse a longer body as it arrives.
 */
export type ManifestFetcher = (
  digestOrTag: string,
  declaredType?: string,
  maxBytes?: number,
) => Promise<{ bytes: Buffer; mediaType: string | undefined; digest: string }>;

export class PlatformNotFoundError extends Error {
  override name = 'PlatformNotFoundError';
}

/**
 * Distinct manifests and indexes one image may hold. Real images hold a few
 * dozen (platforms and their attestations); this bounds the requests a hostile
 * index can cause while leaving a full 1000-entry index room.
 */
export const MAX_MANIFESTS_PER_IMAGE = 2000;
/**
 * Manifest bytes one image may hold, all kept in memory until the bundle is
 * written. Real images hold kilobytes; 64 MiB still admits sixteen manifests
 * at the 4 MiB size limit.
 */
export const MAX_MANIFEST_BYTES_PER_IMAGE = 64 * 1024 * 1024;
/**
 * What the caller lets one image hold. They are the caller's to choose (a
 * bundle holds so much per image): the walk only refuses an image past them,
 * before it fetches more.
 */
export interface ImageBounds {
  /** Manifests, configs and layers together. */
  blobs: number;
  /** Indexes inside indexes. */
  indexDepth: number;
}

/** Manifest requests in flight for one image (images themselves resolve in parallel). */
const FETCHES_PER_IMAGE = 4;

const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * Walks an image from its top manifest down to configs and layers, keeping the
 * index bytes untouched even when the platform filter leaves children out: a
 * rewritten index would have another digest and break digest-pinned references.
 *
 * Everything fetched is attacker input, so the walk is bounded before it is
 * done: each manifest is fetched once however often indexes list it, the
 * count and total size of the manifests are checked against the sizes indexes
 * declare BEFORE anything is fetched, nesting is capped at `bounds.indexDepth`,
 * and a cycle is refused.
 */
export async function resolveImage(
  selector: string,
  fetch: ManifestFetcher,
  filter: readonly Platform[] | undefined,
  where: string,
  bounds: ImageBounds,
): Promise<ResolvedImage> {
  const walk = new ImageWalk(fetch, filter, where, bounds);
  return walk.run(selector);
}

interface Fetched {
  node: ManifestNode;
  /** The children carried (index only), in the index's order, each digest once. */
  edges: Descriptor[];
}

class ImageWalk {
  private readonly fetched = new Map<string, Fetched>();
  /** Distinct configs and layers seen so far, for the per-image bound. */
  private readonly blobDigests = new Set<string>();
  private manifestCount = 0;
  private manifestBytes = 0;

  constructor(
    private readonly fetch: ManifestFetcher,
    private readonly filter: readonly Platform[] | undefined,
    private readonly where: string,
    private readonly bounds: ImageBounds,
  ) {}

  async run(selector: string): Promise<ResolvedImage> {
    const got = await this.fetch(selector, undefined, MAX_MANIFEST_BYTES);
    this.budget(got.bytes.length);
    const root = this.accept(got, undefined, 0);
    const children = root.node.parsed.kind === 'index' ? this.rootChildren(root.node.parsed) : [];
    await this.fetchBelow(root);
    const manifests = this.ordered(root.node.digest);
    return { root: root.node, manifests, blobs: blobsOf(manifests), children };
  }

  /**
   * Fetches every manifest below `root`, breadth first: each level's new
   * digests are known, counted and budgeted from their declared sizes before
   * any of them is requested, so memory never grows past the bounds.
   */
  private async fetchBelow(root: Fetched): Promise<void> {
    let level: Array<{ parent: Fetched; depth: number }> = [{ parent: root, depth: 0 }];
    while (level.length > 0) {
      const wanted = new Map<string, { descriptor: Descriptor; depth: number }>();
      for (const { parent, depth } of level) {
        for (const d of parent.edges)
          if (!this.fetched.has(d.digest) && !wanted.has(d.digest))
            wanted.set(d.digest, { descriptor: d, depth: depth + 1 });
      }
      const todo = [...wanted.values()];
      for (const { descriptor } of todo) this.budget(descriptor.size);
      const next: Array<{ parent: Fetched; depth: number }> = [];
      await forEachLimited(todo, FETCHES_PER_IMAGE, async ({ descriptor, depth }) => {
        const got = await this.fetch(descriptor.digest, descriptor.mediaType, descriptor.size);
        if (got.digest !== descriptor.digest || got.bytes.length !== descriptor.size) {
          throw new InvalidDocumentError(
            `${this.where}: an index lists ${descriptor.digest} of ${descriptor.size} bytes; the registry served ${got.digest} of ${got.bytes.length} bytes`,
          );
        }
        next.push({ parent: this.accept(got, descriptor.mediaType, depth), depth });
      });
      level = next;
    }
  }

  /** Parses a fetched document and records the children it carries. */
  private accept(
    got: { bytes: Buffer; mediaType: string | undefined; digest: string },
    declared: string | undefined,
    depth: number,
  ): Fetched {
    const parsed = parseManifest(got.bytes, got.mediaType ?? declared, this.where);
    const fetched: Fetched = {
      node: { digest: got.digest, mediaType: parsed.mediaType, bytes: got.bytes, parsed, level: 1 },
      edges: [],
    };
    this.fetched.set(got.digest, fetched);
    if (parsed.kind === 'image') {
      for (const d of imageBlobs(parsed)) this.blobDigests.add(d.digest);
      // Refused here, before any download, rather than by whatever reads the result.
      if (this.fetched.size + this.blobDigests.size > this.bounds.blobs) {
        throw new InvalidDocumentError(
          `${this.where}: needs more than ${this.bounds.blobs} manifests, configs and layers, more than a bundle holds for one image`,
        );
      }
      return fetched;
    }
    if (depth >= this.bounds.indexDepth)
      throw new InvalidDocumentError(`${this.where}: indexes nested deeper than ${this.bounds.indexDepth} levels`);
    for (const d of parsed.manifests) {
      if (!SHA256_DIGEST.test(d.digest))
        throw new InvalidDocumentError(
          `${this.where}: an index lists ${printable(d.digest, 80)}; only sha256 manifest digests are supported`,
        );
      if (d.size > MAX_MANIFEST_BYTES)
        throw new InvalidDocumentError(
          `${this.where}: an index lists a manifest of ${d.size} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit`,
        );
    }
    const wanted = selectChildren(parsed.manifests, this.filter);
    if (this.filter && wanted.size === 0) {
      const offered = parsed.manifests
        .filter((m) => m.platform && !attestationTarget(m.annotations))
        .map((m) => printable(formatPlatform(m.platform!), 80));
      throw new PlatformNotFoundError(
        `${this.where}: no manifest for ${this.filter.map(formatPlatform).join(', ')}; the image offers ${offered.length ? [...new Set(offered)].join(', ') : 'no platform entries'}`,
      );
    }
    // An index may list one digest many times: it is one child, fetched and walked once.
    const listed = new Set<string>();
    for (const d of parsed.manifests) {
      if (!wanted.has(d.digest) || listed.has(d.digest)) continue;
      listed.add(d.digest);
      fetched.edges.push(d);
    }
    return fetched;
  }

  private rootChildren(index: Extract<ParsedManifest, { kind: 'index' }>): ResolvedImage['children'] {
    const wanted = selectChildren(index.manifests, this.filter);
    return index.manifests.map((descriptor) => {
      const target = attestationTarget(descriptor.annotations);
      if (target !== undefined && !SHA256_DIGEST.test(target)) {
        throw new InvalidDocumentError(
          `${this.where}: an attestation entry names "${printable(target, 80)}", which is not a sha256 digest`,
        );
      }
      return { descriptor, carried: wanted.has(descriptor.digest), ...(target ? { attestationFor: target } : {}) };
    });
  }

  /** Counts one more manifest of `bytes` (declared by its index before the fetch) against the image's bounds. */
  private budget(bytes: number): void {
    if (++this.manifestCount > MAX_MANIFESTS_PER_IMAGE) {
      throw new InvalidDocumentError(
        `${this.where}: more than ${MAX_MANIFESTS_PER_IMAGE} distinct manifests in one image; refused as a hostile or broken index`,
      );
    }
    this.manifestBytes += bytes;
    if (this.manifestBytes > MAX_MANIFEST_BYTES_PER_IMAGE) {
      throw new InvalidDocumentError(
        `${this.where}: its manifests add up to more than ${MAX_MANIFEST_BYTES_PER_IMAGE / (1024 * 1024)} MiB; refused as a hostile or broken index`,
      );
    }
  }

  /**
   * Every fetched manifest once, children before parents, with its height. A
   * digest met again on its own path is a cycle; a height past the nesting bound
   * is refused (a child shared at two depths counts at the deeper one).
   */
  private ordered(rootDigest: string): ManifestNode[] {
    const out: ManifestNode[] = [];
    const state = new Map<string, 'open' | 'done'>([[rootDigest, 'open']]);
    // Iterative: a hostile graph must not be able to exhaust the stack.
    const stack: Array<{ f: Fetched; next: number }> = [{ f: this.fetched.get(rootDigest)!, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.f.edges.length) {
        const child = top.f.edges[top.next++]!.digest;
        if (state.get(child) === 'open')
          throw new InvalidDocumentError(
            `${this.where}: index ${child} lists itself through its children (a cycle); refused`,
          );
        if (state.get(child) === undefined) {
          state.set(child, 'open');
          stack.push({ f: this.fetched.get(child)!, next: 0 });
        }
        continue;
      }
      stack.pop();
      state.set(top.f.node.digest, 'done');
      top.f.node.level = 1 + top.f.edges.reduce((m, d) => Math.max(m, this.fetched.get(d.digest)!.node.level), 0);
      if (top.f.node.level - 1 > this.bounds.indexDepth)
        throw new InvalidDocumentError(`${this.where}: indexes nested deeper than ${this.bounds.indexDepth} levels`);
      out.push(top.f.node);
    }
    return out;
  }
}

/** Configs and layers of the image manifests, each once, in manifest order. */
function blobsOf(manifests: readonly ManifestNode[]): ResolvedImage['blobs'] {
  const out = new Map<string, Descriptor & { role: 'config' | 'layer' }>();
  for (const { parsed } of manifests) {
    if (parsed.kind !== 'image') continue;
    for (const d of imageBlobs(parsed))
      if (!out.has(d.digest)) out.set(d.digest, { ...d, role: d === parsed.config ? 'config' : 'layer' });
  }
  return [...out.values()];
}

/** Runs `fn` over `items`, at most `limit` at once; the first failure stops new work and is thrown. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
}

/**
 * Children carried under a platform filter. Entries without a platform (artifacts
 * in an index) are kept; attestations follow the manifest they describe.
 */
export function selectChildren(children: readonly Descriptor[], filter: readonly Platform[] | undefined): Set<string> {
  if (!filter || filter.length === 0) return new Set(children.map((c) => c.digest));
  const keep = new Set<string>();
  for (const c of children) {
    if (attestationTarget(c.annotations)) continue;
    if (!c.platform || filter.some((f) => platformMatches(f, c.platform!))) keep.add(c.digest);
  }
  for (const c of children) {
    const target = attestationTarget(c.annotations);
    if (target && keep.has(target)) keep.add(c.digest);
  }
  return keep;
}
