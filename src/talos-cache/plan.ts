import { listedBy, withReferrer, type SignatureManifest } from '../signatures/countersign-documents.js';
import type { BundleMetadata, ImageRecord } from '../bundle/format.js';
import { BundleFormatError } from '../bundle/reader.js';
import type { Descriptor, Platform } from '../oci/descriptor.js';
import { digestHex } from '../oci/digest.js';
import { imageBlobs, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { formatPlatform, parsePlatform, platformMatches } from '../oci/platform.js';
import { UserInputError } from '../util/user-input.js';
import { printable } from '../util/text.js';
import { blobPath, digestPath, referencePath, repositoryDir } from './names.js';

/**
 * Which files an image cache holds for the chosen platforms, decided from the
 * bundle's metadata and manifests alone (pure: nothing is read or written
 * here). Per image, as Talos's own builder does: the tag file and the digest
 * file with the bytes the tag resolves to, every chosen platform manifest under
 * its digest, and the config and layers of each under `blob/`; with `all`,
 * every child of an index, attestations included; cosign signatures
 * (`sha256-<hex>.sig`, `sha256-<hex>`) of the image when the bundle carries them.
 */

/** `all`, or the platforms asked for, in order (the first names the oci wrapping's platform). */
export type PlatformChoice = 'all' | Platform[];

export type TreeFile =
  /** A manifest or index, exactly the bytes the bundle carries. */
  | { path: string; bytes: Buffer }
  /** A config or layer, copied from the bundle. */
  | { path: string; blob: string; size: number };

export interface CachedImage {
  reference: string;
  digest: string;
  /** The platform manifests written (`os/arch[/variant]`, `unknown/unknown` for attestations); empty for a single manifest. */
  platforms: string[];
  /** Signature tags written for it. */
  signatures: string[];
}

export interface CachePlan {
  /** Every file, sorted by path. */
  files: TreeFile[];
  /** Every folder, sorted, parents first. */
  directories: string[];
  images: CachedImage[];
  /** Bytes of all files. */
  bytes: number;
}

/** The user asked for a platform the bundle does not carry: exit 2, naming the image. */
export class PlatformRefused extends UserInputError {
  override name = 'PlatformRefused';
}

/** A manifest's bytes by digest; the caller has read and hashed every manifest the plan may need. */
export type ManifestLookup = (digest: string) => Buffer;

/**
 * The cluster's signature for images the policy verified, so Talos
 * `publicKey` rules hold with the cache alone: made by the caller (it signs),
 * laid out here like any signature Talos looks up.
 */
export interface CacheCountersign {
  /** References of the images to countersign. */
  verified: Set<string>;
  referrer(image: ImageRecord): SignatureManifest;
  legacy(image: ImageRecord): SignatureManifest;
}

export function planCache(
  metadata: BundleMetadata,
  manifest: ManifestLookup,
  choice: PlatformChoice,
  countersign?: CacheCountersign,
): CachePlan {
  checkBundleFilter(metadata.platforms, choice);
  const tree = new Tree();
  const signatures = signaturesBySubject(metadata);
  const images: CachedImage[] = [];
  for (const image of metadata.images) {
    // The image cache holds what nodes pull: neither signatures as images of their own, nor charts and files.
    if (image.artifact || image.carried) continue;
    const platforms = addImage(tree, image, manifest, choice);
    const sigs = signatures.get(`${image.reference}\n${image.digest}`) ?? [];
    for (const sig of sigs) addSignature(tree, sig, manifest);
    const own = countersign?.verified.has(image.reference)
      ? addCountersignature(tree, image, sigs, manifest, countersign)
      : [];
    images.push({
      reference: image.reference,
      digest: image.digest,
      platforms,
      signatures: [...new Set([...sigs.map((s) => s.tag!), ...own])],
    });
  }
  return { ...tree.finish(), images };
}

/**
 * The cluster's signature of one image: its referrer under its digest, the
 * `sha256-<hex>` fallback index listing it after the upstream referrers (the
 * tag file now holds that index), and the legacy `.sig` where the image has
 * none. Returns the tags written.
 */
function addCountersignature(
  tree: Tree,
  image: ImageRecord,
  sigs: ImageRecord[],
  manifest: ManifestLookup,
  countersign: CacheCountersign,
): string[] {
  const dir = repositoryDir(image.registry, image.repository);
  const base = `sha256-${digestHex(image.digest)}`;
  const referrer = countersign.referrer(image);
  addSignatureManifest(tree, dir, referrer);
  const upstream = sigs.find((s) => s.tag === base);
  const index = withReferrer(upstream ? listedBy(manifest(upstream.digest)) : [], referrer.manifest);
  if (index) {
    tree.addBytes(digestPath(dir, index.digest), index.bytes);
    tree.replaceBytes(referencePath(dir, base), index.bytes);
  }
  if (sigs.some((s) => s.tag === `${base}.sig`)) return [base];
  const legacy = countersign.legacy(image);
  addSignatureManifest(tree, dir, legacy);
  tree.addBytes(referencePath(dir, `${base}.sig`), legacy.manifest.bytes);
  return [base, `${base}.sig`];
}

/** A signature manifest under its digest, and its blobs (bytes made here, not copied from the bundle). */
function addSignatureManifest(tree: Tree, dir: string, sig: SignatureManifest): void {
  tree.addBytes(digestPath(dir, sig.manifest.digest), sig.manifest.bytes);
  for (const b of sig.blobs) tree.addBlobBytes(b.digest, b.bytes);
}

/** A bundle exported with `--platform` carries only those children: asking for another is refused up front. */
function checkBundleFilter(filter: string[] | null, choice: PlatformChoice): void {
  if (filter === null) return;
  const carried = filter.join(', ');
  if (choice === 'all')
    throw new PlatformRefused(
      `the bundle was exported with --platform ${carried}, so it lacks the other platforms; --platform all needs a bundle exported without --platform (or ask for ${carried})`,
    );
  const filters = filter.map(parsePlatform);
  for (const p of choice) {
    if (!filters.some((f) => platformMatches(f, p) || platformMatches(p, f)))
      throw new PlatformRefused(
        `the bundle was exported with --platform ${carried} and carries no ${formatPlatform(p)}; export again with --platform ${formatPlatform(p)}, or ask for ${carried}`,
      );
  }
}

function parsed(bytes: Buffer, mediaType: string | undefined, where: string): ParsedManifest {
  try {
    return parseManifest(bytes, mediaType, where);
  } catch (err) {
    throw new BundleFormatError(`${where}: ${(err as Error).message}`);
  }
}

/** Writes one image; returns the platforms written. */
function addImage(tree: Tree, image: ImageRecord, manifest: ManifestLookup, choice: PlatformChoice): string[] {
  const dir = repositoryDir(image.registry, image.repository);
  const top = manifest(image.digest);
  if (image.tag !== undefined) tree.addBytes(referencePath(dir, image.tag), top);
  tree.addBytes(digestPath(dir, image.digest), top);
  const doc = parsed(top, image.mediaType, image.reference);
  if (doc.kind === 'image') {
    addBlobs(tree, doc);
    return [];
  }
  const children = choice === 'all' ? allChildren(image, doc.manifests) : chosenChildren(image, doc.manifests, choice);
  for (const child of children) addManifest(tree, dir, child, manifest, image.reference);
  return children.map((c) => (c.platform ? formatPlatform(c.platform) : 'unknown/unknown'));
}

/** A platform manifest under its digest, and its config and layers. */
function addManifest(tree: Tree, dir: string, child: Descriptor, manifest: ManifestLookup, reference: string): void {
  const bytes = manifest(child.digest);
  tree.addBytes(digestPath(dir, child.digest), bytes);
  const doc = parsed(bytes, child.mediaType, `${reference} (${child.digest})`);
  if (doc.kind === 'index')
    throw new Error(`${printable(reference)}: an index inside an index, which a Talos image cache cannot hold`);
  addBlobs(tree, doc);
}

function addBlobs(tree: Tree, doc: Extract<ParsedManifest, { kind: 'image' }>): void {
  for (const b of imageBlobs(doc)) tree.addBlob(b.digest, b.size);
}

const isAttestation = (d: Descriptor) => d.platform?.os === 'unknown' || d.platform === undefined;

/** Every child of the index, attestations included; each must be in the bundle. */
function allChildren(image: ImageRecord, children: Descriptor[]): Descriptor[] {
  for (const c of children) requireCarried(image, c);
  return children;
}

/** For each platform asked, the first child of the index that matches it, as Talos picks. */
function chosenChildren(image: ImageRecord, children: Descriptor[], platforms: Platform[]): Descriptor[] {
  const out = new Map<string, Descriptor>();
  for (const p of platforms) {
    const child = children.find((c) => !isAttestation(c) && platformMatches(p, c.platform!));
    if (!child) {
      const has = children.filter((c) => !isAttestation(c)).map((c) => formatPlatform(c.platform!));
      throw new PlatformRefused(
        `${printable(image.reference)} has no ${formatPlatform(p)} (it has ${printable(has.join(', ') || 'no platforms', 200)}); ask for platforms it has, or leave the image out of the bundle`,
      );
    }
    requireCarried(image, child);
    out.set(child.digest, child);
  }
  return [...out.values()];
}

function requireCarried(image: ImageRecord, child: Descriptor): void {
  if (!image.absent.includes(child.digest) && image.blobs.includes(child.digest)) return;
  const what = child.platform ? formatPlatform(child.platform) : child.digest;
  throw new PlatformRefused(
    `${printable(image.reference)}: ${what} was left out of the bundle when it was exported with --platform; export it again with that platform`,
  );
}

/**
 * Cosign's signature tags (`sha256-<hex>.sig`) and the OCI referrers fallback
 * tag (`sha256-<hex>`) of each image's top-level digest: what Talos's builder
 * caches and its verifier looks up. Keyed by image reference and digest.
 */
function signaturesBySubject(metadata: BundleMetadata): Map<string, ImageRecord[]> {
  const out = new Map<string, ImageRecord[]>();
  for (const a of metadata.images) {
    if (!a.artifact || a.tag === undefined) continue;
    const base = `sha256-${digestHex(a.artifact.subject)}`;
    if (a.tag !== base && a.tag !== `${base}.sig`) continue;
    const key = `${a.artifact.of}\n${a.artifact.subject}`;
    out.set(key, [...(out.get(key) ?? []), a]);
  }
  return out;
}

/** A signature tag: the tag and digest files, and what its manifest (or every child of its index) needs. */
function addSignature(tree: Tree, sig: ImageRecord, manifest: ManifestLookup): void {
  const dir = repositoryDir(sig.registry, sig.repository);
  const top = manifest(sig.digest);
  tree.addBytes(referencePath(dir, sig.tag!), top);
  tree.addBytes(digestPath(dir, sig.digest), top);
  const doc = parsed(top, sig.mediaType, sig.reference);
  if (doc.kind === 'image') addBlobs(tree, doc);
  else for (const child of doc.manifests) addManifest(tree, dir, child, manifest, sig.reference);
}

/** Files by path; a path written twice must hold the same content. */
class Tree {
  private readonly files = new Map<string, TreeFile>();

  addBytes(path: string, bytes: Buffer): void {
    const had = this.files.get(path);
    if (had && !('bytes' in had && had.bytes.equals(bytes)))
      throw new BundleFormatError(`two images of the bundle would write ${printable(path)} with different content`);
    this.files.set(path, { path, bytes });
  }

  /** A blob made here; one of that digest already in the tree (copied from the bundle) is the same bytes. */
  addBlobBytes(digest: string, bytes: Buffer): void {
    const path = blobPath(digest);
    if (!this.files.has(path)) this.files.set(path, { path, bytes });
  }

  /** A file this plan itself supersedes (a tag moved to a new index), never one two images disagree on. */
  replaceBytes(path: string, bytes: Buffer): void {
    this.files.set(path, { path, bytes });
  }

  addBlob(digest: string, size: number): void {
    const path = blobPath(digest);
    const had = this.files.get(path);
    if (had && 'blob' in had && had.size !== size)
      throw new BundleFormatError(`blob ${digest} is listed with two sizes (${had.size} and ${size})`);
    this.files.set(path, { path, blob: digest, size });
  }

  finish(): { files: TreeFile[]; directories: string[]; bytes: number } {
    const files = [...this.files.values()].sort((a, b) => compare(a.path, b.path));
    const dirs = new Set<string>();
    for (const f of files) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    }
    const bytes = files.reduce((n, f) => n + ('bytes' in f ? f.bytes.length : f.size), 0);
    return { files, directories: [...dirs].sort(compare), bytes };
  }
}

/** Byte order of the names, as Go sorts strings: the same on every machine and locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
