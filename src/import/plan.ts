import { mappingProblem, targetRepository, type RepositoryMapping } from '../reference/mapping.js';
import { printable } from '../util/text.js';
import type { BlobPart, BundleMetadata, ImageRecord } from '../bundle/format.js';
import { UserInputError } from '../util/user-input.js';

export class PlanError extends UserInputError {
  override name = 'PlanError';
}

export interface PlannedImage {
  image: ImageRecord;
  repository: string;
  /** Tag to set last, or undefined for a digest-only reference. */
  tag: string | undefined;
  /** Manifests and indexes in push order (children before parents). */
  manifests: string[];
  /** Configs and layers. */
  blobs: string[];
}

export interface ImportPlan {
  /** The mapping the repositories were named by: what mirrors for this registry must follow. */
  mapping: RepositoryMapping;
  images: PlannedImage[];
  /** For each config/layer digest: the repositories that need it. */
  blobRepos: Map<string, string[]>;
  sizes: Map<string, number>;
  mediaTypes: Map<string, string>;
  /** Blobs a delta leaves out: digest → a repository known to hold it, if recorded. */
  external: Map<string, string | undefined>;
  /**
   * In a volume set: this volume, the volume carrying each whole config and
   * layer, and the parts of each blob cut across volumes.
   */
  volume?: { index: number; count: number; of: Map<string, number>; parts: Map<string, BlobPart[]> };
}

/**
 * Maps every image to its target and refuses, before anything is pushed, two
 * references that would land on the same repository:tag with different content.
 */
export function planImport(metadata: BundleMetadata, mapping: RepositoryMapping): ImportPlan {
  const problem = mappingProblem(mapping);
  if (problem !== undefined) throw new PlanError(problem);
  const roles = new Map(metadata.blobs.map((b) => [b.digest, b.role]));
  const order = new Map(metadata.blobs.map((b, i) => [b.digest, i]));
  const sizes = new Map(metadata.blobs.map((b) => [b.digest, b.size]));
  const mediaTypes = new Map(metadata.blobs.map((b) => [b.digest, b.mediaType]));
  const images: PlannedImage[] = [];
  const claimed = new Map<string, { reference: string; digest: string }>();
  const collisions: string[] = [];
  const blobRepos = new Map<string, string[]>();

  for (const image of metadata.images) {
    const repository = targetRepository(image, mapping);
    const key = `${repository}:${image.tag ?? image.digest}`;
    const other = claimed.get(key);
    if (other && other.digest !== image.digest) {
      collisions.push(
        `${printable(other.reference)} and ${printable(image.reference)} would both be ${printable(key)}`,
      );
    }
    claimed.set(key, { reference: image.reference, digest: image.digest });
    const manifests = image.blobs
      .filter((d) => roles.get(d) === 'manifest' || roles.get(d) === 'index')
      .sort((a, b) => order.get(a)! - order.get(b)!);
    const blobs = image.blobs.filter((d) => roles.get(d) === 'layer' || roles.get(d) === 'config');
    for (const d of blobs) {
      const list = blobRepos.get(d) ?? [];
      if (!list.includes(repository)) list.push(repository);
      blobRepos.set(d, list);
    }
    images.push({ image, repository, tag: image.tag, manifests, blobs });
  }
  if (collisions.length > 0) {
    throw new PlanError(
      `references collide in the target registry (different content, same name):\n${collisions.map((c) => `  - ${c}`).join('\n')}\nUse --keep-registry-host to keep each source registry as the first path component.`,
    );
  }
  const external = new Map(metadata.blobs.filter((b) => b.external).map((b) => [b.digest, b.mountFrom]));
  const volume = metadata.volumes
    ? {
        index: metadata.volumes.index,
        count: metadata.volumes.count,
        of: new Map(metadata.blobs.filter((b) => b.volume !== undefined).map((b) => [b.digest, b.volume!])),
        parts: new Map(metadata.blobs.filter((b) => b.parts).map((b) => [b.digest, b.parts!])),
      }
    : undefined;
  return { mapping, images, blobRepos, sizes, mediaTypes, external, ...(volume ? { volume } : {}) };
}
