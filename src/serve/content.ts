import type { BlobRole, ImageRecord } from '../bundle/format.js';
import { targetRepository, type RepositoryMapping } from '../reference/mapping.js';
import type { SignatureManifest } from '../signatures/countersign-documents.js';
import { byteOrder } from './pagination.js';
import type { ServedUnit } from './units.js';

/** A byte range of a bundle file; a blob is one or more of them, read in order. */
export interface FilePiece {
  file: string;
  offset: number;
  size: number;
}

export interface ServedBlob {
  size: number;
  mediaType: string;
  role: BlobRole;
  pieces: FilePiece[];
  /** Bytes made at start rather than read from a bundle (a countersignature); `pieces` is then empty. */
  memory?: Buffer;
}

/** What one source registry contributes to a served repository. */
interface RegistrySide {
  tags: Map<string, string>;
  /** Every manifest, index, config and layer its images use: the only blobs served under this name. */
  digests: Set<string>;
  artifacts: ImageRecord[];
}

const OCTETS = 'application/octet-stream';

/** A countersignature as the referrers listing reads carried referrers: a record naming its subject. */
function referrerRecord(image: ImageRecord, referrer: SignatureManifest): ImageRecord {
  const { digest, mediaType, size } = referrer.manifest;
  return {
    reference: `${image.registry}/${image.repository}@${digest}`,
    registry: image.registry,
    repository: image.repository,
    digest,
    mediaType,
    size,
    platforms: [],
    absent: [],
    blobs: [digest, ...referrer.blobs.map((b) => b.digest)],
    bytes: size + referrer.blobs.reduce((n, b) => n + b.bytes.length, 0),
    artifact: { kind: 'referrer', subject: image.digest, of: image.reference },
  };
}

export type TagLookup = { digest: string } | { ambiguous: string[] } | undefined;

/**
 * Everything the server answers from, built once at start from the bundles'
 * metadata: repositories named as `import` would name them, each split by the
 * registry its images came from, so that containerd's `?ns=` picks one.
 */
export class ServedContent {
  private readonly repositories = new Map<string, Map<string, RegistrySide>>();
  private readonly held: Map<string, ServedBlob>;
  private sortedNames: string[] | undefined;

  constructor(
    units: ServedUnit[],
    blobs: Map<string, ServedBlob>,
    private readonly mapping: RepositoryMapping,
  ) {
    this.held = blobs;
    for (const unit of units) for (const image of unit.metadata.images) this.add(image, mapping);
  }

  private add(image: ImageRecord, mapping: RepositoryMapping): void {
    const name = targetRepository(image, mapping);
    let sides = this.repositories.get(name);
    if (!sides) this.repositories.set(name, (sides = new Map()));
    let side = sides.get(image.registry);
    if (!side) sides.set(image.registry, (side = { tags: new Map(), digests: new Set(), artifacts: [] }));
    if (image.tag !== undefined) side.tags.set(image.tag, image.digest);
    for (const d of image.blobs) side.digests.add(d);
    side.digests.add(image.digest);
    if (image.artifact) side.artifacts.push(image);
  }

  get blobs(): ReadonlyMap<string, ServedBlob> {
    return this.held;
  }

  /**
   * The cluster's signature of `image`, made at start and held in memory,
   * served where Talos and cosign look for it: a referrer of the image (the
   * referrers API), and the legacy `sha256-<hex>.sig` tag when the bundle
   * carries none for it. A carried signature is never replaced.
   */
  countersign(image: ImageRecord, signature: { referrer: SignatureManifest; legacy: SignatureManifest }): void {
    const side = this.repositories.get(targetRepository(image, this.mapping))?.get(image.registry);
    if (!side) throw new Error(`${image.reference} is not served`);
    const { referrer, legacy } = signature;
    this.hold(side, referrer);
    side.artifacts.push(referrerRecord(image, referrer));
    const tag = `${image.digest.replace(':', '-')}.sig`;
    if (side.tags.has(tag)) return;
    this.hold(side, legacy);
    side.tags.set(tag, legacy.manifest.digest);
  }

  private hold(side: RegistrySide, signature: SignatureManifest): void {
    const { manifest } = signature;
    for (const b of signature.blobs) {
      if (!this.held.has(b.digest))
        this.held.set(b.digest, {
          size: b.bytes.length,
          mediaType: OCTETS,
          role: 'layer',
          pieces: [],
          memory: b.bytes,
        });
      side.digests.add(b.digest);
    }
    const doc = { size: manifest.size, mediaType: manifest.mediaType, role: 'manifest' as const, pieces: [] };
    this.held.set(manifest.digest, { ...doc, memory: manifest.bytes });
    side.digests.add(manifest.digest);
  }

  /** Served repository names, sorted. */
  names(): string[] {
    this.sortedNames ??= [...this.repositories.keys()].sort(byteOrder);
    return this.sortedNames;
  }

  hasRepository(name: string, ns: string | undefined): boolean {
    return this.sides(name, ns).length > 0;
  }

  tags(name: string, ns: string | undefined): string[] {
    const out = new Set<string>();
    for (const s of this.sides(name, ns)) for (const t of s.tags.keys()) out.add(t);
    return [...out].sort(byteOrder);
  }

  /** The digest a tag names; `ambiguous` when two registries map here with different content and no `ns` says which. */
  lookupTag(name: string, ns: string | undefined, tag: string): TagLookup {
    const found = new Set<string>();
    for (const s of this.sides(name, ns)) {
      const d = s.tags.get(tag);
      if (d) found.add(d);
    }
    if (found.size === 0) return undefined;
    if (found.size > 1) return { ambiguous: this.registriesOf(name) };
    return { digest: [...found][0]! };
  }

  /** Whether a digest belongs to the images of this repository (a blob is served only there). */
  holds(name: string, ns: string | undefined, digest: string): boolean {
    return this.sides(name, ns).some((s) => s.digests.has(digest)) && this.blobs.has(digest);
  }

  /** Artifacts carried for `subject` in this repository: the candidates for its referrers. */
  artifactsOf(name: string, ns: string | undefined, subject: string): ImageRecord[] {
    return this.sides(name, ns).flatMap((s) => s.artifacts.filter((a) => a.artifact?.subject === subject));
  }

  registriesOf(name: string): string[] {
    return [...(this.repositories.get(name)?.keys() ?? [])].sort(byteOrder);
  }

  private sides(name: string, ns: string | undefined): RegistrySide[] {
    const sides = this.repositories.get(name);
    if (!sides) return [];
    if (ns === undefined) return [...sides.values()];
    const side = sides.get(ns);
    return side ? [side] : [];
  }
}
