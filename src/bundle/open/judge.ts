import type { Descriptor } from '../../oci/descriptor.js';
import { isIndexType } from '../../oci/media-types.js';
import { formatPlatform } from '../../oci/platform.js';
import { printable } from '../../util/text.js';
import { ANNOTATION_REF_NAME, MAX_INDEX_DEPTH, type BundleMetadata, type ImageRecord } from '../format.js';
import type { BlobSeen } from './blob-check.js';

/**
 * Judging what a scan found: which images each problem breaks, platform by
 * platform, and which problems mean the bundle was altered rather than
 * damaged. Pure functions over the scan's results.
 */

export type ImageStatus = 'intact' | 'damaged' | 'incomplete' | 'needs other volumes';

export interface PlatformReport {
  platform: string;
  digest: string;
  status: ImageStatus | 'not carried';
}

export interface ImageReport {
  reference: string;
  digest: string;
  status: ImageStatus;
  platforms: PlatformReport[];
  problems: string[];
}

interface Problem {
  text: string;
  /** Damaged (bytes wrong) rather than incomplete (bytes absent). */
  damaged: boolean;
  /**
   * The metadata and the manifests disagree (a blob needed but not listed,
   * indexes nested past the bound or in a cycle): the bundle was altered,
   * not merely damaged, and nothing of it may be trusted.
   */
  structural?: boolean;
}

function statusOf(problems: Problem[]): ImageStatus {
  if (problems.length === 0) return 'intact';
  return problems.some((p) => p.damaged) ? 'damaged' : 'incomplete';
}

/** What walking one image found: its report, and what of it means the bundle was altered. */
export interface ImageJudgement {
  report: ImageReport;
  /** Problems that mean the bundle was altered (see Problem.structural). */
  structural: string[];
}

/**
 * Walks one image from its top descriptor through every level of indexes down
 * to configs and layers, attributing each problem to the platform it breaks.
 * Each digest is judged once per image (a child listed many times costs one
 * visit), indexes may nest MAX_INDEX_DEPTH deep and never in a cycle, and
 * everything reachable must be listed in the image's metadata.
 */
export function judgeImage(
  im: ImageRecord,
  seen: Map<string, BlobSeen>,
  elsewhere: Map<string, string[]>,
): ImageJudgement {
  const walk = new ImageWalk(im, seen, elsewhere);
  const problems: Problem[] = [];
  const platforms: PlatformReport[] = [];
  const isIndex = isIndexType(im.mediaType);
  problems.push(
    ...walk.check({ mediaType: im.mediaType, digest: im.digest, size: im.size }, isIndex ? 'index' : 'manifest', 0),
  );
  const top = seen.get(im.digest)?.parsed;
  if (isIndex && top?.kind === 'index' && problems.length === 0) {
    for (const child of top.manifests) {
      const platform = child.platform ? formatPlatform(child.platform) : 'unknown/unknown';
      if (walk.absent.has(child.digest)) {
        platforms.push({ platform, digest: child.digest, status: 'not carried' });
        continue;
      }
      const own = walk.check(child, isIndexType(child.mediaType) ? 'index' : 'manifest', 1);
      problems.push(...own.map((p) => ({ ...p, text: `${platform}: ${p.text}` })));
      platforms.push({ platform, digest: child.digest, status: statusOf(own) });
    }
  }
  const needs = walk.needs;
  const status = problems.length === 0 && needs.size > 0 ? 'needs other volumes' : statusOf(problems);
  const texts = [
    ...problems.map((p) => p.text),
    ...(status === 'needs other volumes' ? [`its remaining blobs are in ${[...needs].sort().join(', ')}`] : []),
  ];
  return {
    report: { reference: im.reference, digest: im.digest, status, platforms, problems: bounded(texts) },
    structural: problems.filter((p) => p.structural).map((p) => p.text),
  };
}

/** One image's walk: what it lists, what it left out, and each digest's verdict, computed once. */
class ImageWalk {
  readonly listed: Set<string>;
  readonly absent: Set<string>;
  readonly needs = new Set<string>();
  private readonly verdicts = new Map<string, Problem[]>();
  private readonly onPath = new Set<string>();

  constructor(
    im: ImageRecord,
    private readonly seen: Map<string, BlobSeen>,
    private readonly elsewhere: Map<string, string[]>,
  ) {
    this.listed = new Set(im.blobs);
    this.absent = new Set(im.absent);
  }

  check(d: Descriptor, label: string, depth: number): Problem[] {
    if (this.onPath.has(d.digest))
      return [{ text: `${label} ${d.digest} contains itself (an index cycle)`, damaged: true, structural: true }];
    const known = this.verdicts.get(d.digest);
    if (known) return known;
    this.onPath.add(d.digest);
    const verdict = this.judge(d, label, depth);
    this.onPath.delete(d.digest);
    this.verdicts.set(d.digest, verdict);
    return verdict;
  }

  private judge(d: Descriptor, label: string, depth: number): Problem[] {
    if (!this.listed.has(d.digest))
      return [
        {
          text: `${label} ${d.digest} is needed, but the metadata does not list it for this image`,
          damaged: true,
          structural: true,
        },
      ];
    const b = this.seen.get(d.digest);
    // A delta's dependency (checked against the registry at import) or a blob of another volume.
    const where = this.elsewhere.get(d.digest);
    if (!b && where) {
      for (const w of where) this.needs.add(w);
      return [];
    }
    if (!b) return [{ text: `${label} ${d.digest} is missing`, damaged: false }];
    // An invalid document refuses the whole bundle (see the file scan); here it breaks its images.
    const unusable = b.damage ?? b.invalid;
    if (unusable) return [{ text: `${label} ${d.digest}: ${unusable}`, damaged: true }];
    if (b.size !== d.size)
      return [{ text: `${label} ${d.digest} is ${b.size} bytes, its descriptor says ${d.size}`, damaged: true }];
    const p = b.parsed;
    if (!p) {
      if (label === 'manifest' || label === 'index')
        return [{ text: `${label} ${d.digest} could not be read as a manifest`, damaged: true }];
      return [];
    }
    if (p.kind === 'image')
      return [
        ...this.check(p.config, 'config', depth + 1),
        ...p.layers.flatMap((l) => this.check(l, 'layer', depth + 1)),
      ];
    // The top index's children are walked by the caller, platform by platform.
    if (depth === 0) return [];
    if (depth >= MAX_INDEX_DEPTH)
      return [
        { text: `index ${d.digest} nests indexes more than ${MAX_INDEX_DEPTH} deep`, damaged: true, structural: true },
      ];
    return p.manifests
      .filter((c) => !this.absent.has(c.digest))
      .flatMap((c) => this.check(c, isIndexType(c.mediaType) ? 'index' : 'manifest', depth + 1));
  }
}

/** Reports list at most this many problems each; the count of the rest is given. */
const MAX_LISTED_PROBLEMS = 100;

export function bounded(problems: string[]): string[] {
  if (problems.length <= MAX_LISTED_PROBLEMS) return problems;
  return [...problems.slice(0, MAX_LISTED_PROBLEMS), `… and ${problems.length - MAX_LISTED_PROBLEMS} more`];
}

/**
 * index.json must list exactly the metadata's images: each image under its
 * reference, each artifact (signature, attestation, SBOM, referrer) by its
 * digest without a name (bundles written before artifacts went unnamed name
 * them, which is accepted too), with the metadata's digest, size and type.
 */
export function compareIndex(metadata: BundleMetadata, index: Descriptor[]): string[] {
  const out: string[] = [];
  const byName = new Map<string, Descriptor>();
  const unnamed = new Map<string, Descriptor>();
  for (const d of index) {
    const name = d.annotations?.[ANNOTATION_REF_NAME];
    if (name !== undefined) byName.set(name, d);
    else unnamed.set(d.digest, d);
  }
  for (const im of metadata.images) {
    const d = byName.get(im.reference) ?? (im.artifact ? unnamed.get(im.digest) : undefined);
    if (!d) out.push(`index.json has no entry for ${im.reference}`);
    else if (d.digest !== im.digest || d.size !== im.size || d.mediaType !== im.mediaType) {
      out.push(`index.json entry for ${im.reference} (${d.digest}) differs from the metadata (${im.digest})`);
    }
  }
  const names = new Set(metadata.images.map((im) => im.reference));
  const artifacts = new Set(metadata.images.filter((im) => im.artifact).map((im) => im.digest));
  for (const name of byName.keys())
    if (!names.has(name)) out.push(`index.json entry ${printable(name)} is not in the metadata`);
  for (const digest of unnamed.keys())
    if (!artifacts.has(digest)) out.push(`index.json entry ${digest} has no name and is no artifact of the metadata`);
  return out;
}
