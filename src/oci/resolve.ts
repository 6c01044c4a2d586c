import type { Descriptor, Platform } from './descriptor.js';
import { imageBlobs, parseManifest, type ParsedManifest } from './manifest.js';
import { attestationTarget, formatPlatform, platformMatches } from './platform.js';

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
  /** Every manifest and index carried, root included. */
  manifests: ManifestNode[];
  /** Configs and layers of the carried manifests, in manifest order, possibly repeated. */
  blobs: Array<Descriptor & { role: 'config' | 'layer' }>;
  children: Array<{ descriptor: Descriptor; carried: boolean; attestationFor?: string }>;
}

export type ManifestFetcher = (digestOrTag: string, declaredType?: string) => Promise<{ bytes: Buffer; mediaType: string | undefined; digest: string }>;

export class PlatformNotFoundError extends Error {
  override name = 'PlatformNotFoundError';
}

/**
 * Walks an image from its top manifest down to configs and layers, keeping the
 * index bytes untouched even when the platform filter leaves children out: a
 * rewritten index would have another digest and break digest-pinned references.
 */
export async function resolveImage(selector: string, fetch: ManifestFetcher, filter: readonly Platform[] | undefined, where: string): Promise<ResolvedImage> {
  const manifests: ManifestNode[] = [];
  const blobs: ResolvedImage['blobs'] = [];
  const children: ResolvedImage['children'] = [];

  const visit = async (sel: string, declared: string | undefined, depth: number): Promise<ManifestNode> => {
    if (depth > 4) throw new Error(`${where}: indexes nested deeper than 4 levels`);
    const got = await fetch(sel, declared);
    const parsed = parseManifest(got.bytes, got.mediaType ?? declared, where);
    const node: ManifestNode = { digest: got.digest, mediaType: parsed.mediaType, bytes: got.bytes, parsed, level: 1 };
    if (parsed.kind === 'image') {
      for (const d of imageBlobs(parsed)) blobs.push({ ...d, role: d === parsed.config ? 'config' : 'layer' });
    } else {
      const wanted = selectChildren(parsed.manifests, filter);
      if (filter && wanted.size === 0) {
        const offered = parsed.manifests.filter((m) => m.platform && !attestationTarget(m.annotations)).map((m) => formatPlatform(m.platform!));
        throw new PlatformNotFoundError(
          `${where}: no manifest for ${filter.map(formatPlatform).join(', ')}; the image offers ${offered.length ? offered.join(', ') : 'no platform entries'}`,
        );
      }
      const carried = [];
      for (const child of parsed.manifests) {
        const target = attestationTarget(child.annotations);
        if (depth === 0) children.push({ descriptor: child, carried: wanted.has(child.digest), ...(target ? { attestationFor: target } : {}) });
        if (wanted.has(child.digest)) carried.push(child);
      }
      // Children at once: each is a round trip, and an index may list a dozen platforms.
      const subs = await Promise.all(carried.map((child) => visit(child.digest, child.mediaType, depth + 1)));
      node.level = Math.max(0, ...subs.map((sub) => sub.level)) + 1;
    }
    manifests.push(node);
    return node;
  };

  const root = await visit(selector, undefined, 0);
  return { root, manifests, blobs, children };
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
