import type { BlobRecord, BundleMetadata } from '../bundle/format.js';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';
import type { FilePiece, ServedBlob } from './content.js';
import type { CheckedFile } from '../bundle/open/structure.js';

/** One bundle, or every volume of one set: what carries a set of images. */
export interface ServedUnit {
  label: string;
  metadata: BundleMetadata;
  /** The blobs this unit carries, as ranges of its files. */
  blobs: Map<string, ServedBlob>;
}

/** The bundles given cannot be served together: exit 2, with what to give instead. */
export class ServeInputError extends UserInputError {
  override name = 'ServeInputError';
}

/**
 * Groups the files into units (volumes by their set id), locates every
 * carried blob, and refuses at start what would fail on a node later: an
 * incomplete volume set, a delta without what it was made against, and a tag
 * that two bundles give different content.
 */
export function assembleUnits(bundles: CheckedFile[]): { units: ServedUnit[]; blobs: Map<string, ServedBlob> } {
  const units = groupUnits(bundles);
  const blobs = new Map<string, ServedBlob>();
  for (const u of units) for (const [d, b] of u.blobs) if (!blobs.has(d)) blobs.set(d, b);
  const problems = [...missingExternals(units, blobs), ...tagConflicts(units)];
  if (problems.length > 0) throw new ServeInputError(problems.join('\n'));
  return { units, blobs };
}

function groupUnits(bundles: CheckedFile[]): ServedUnit[] {
  const sets = new Map<string, CheckedFile[]>();
  const units: ServedUnit[] = [];
  for (const b of bundles) {
    const set = b.metadata.volumes?.set;
    if (set === undefined) units.push(singleUnit(b));
    else sets.set(set, [...(sets.get(set) ?? []), b]);
  }
  for (const volumes of sets.values()) units.push(volumeUnit(volumes));
  return units;
}

function singleUnit(b: CheckedFile): ServedUnit {
  const blobs = new Map<string, ServedBlob>();
  for (const r of b.metadata.blobs) {
    if (r.external) continue;
    const at = b.blobs.get(r.digest);
    if (at) blobs.set(r.digest, served(r, [{ file: b.path, ...at }]));
  }
  return { label: b.path, metadata: b.metadata, blobs };
}

function served(r: BlobRecord, pieces: FilePiece[]): ServedBlob {
  return { size: r.size, mediaType: r.mediaType, role: r.role, pieces };
}

/** A whole set: a blob cut across volumes is served by reading its parts in order. */
function volumeUnit(volumes: CheckedFile[]): ServedUnit {
  const first = volumes[0]!;
  const count = first.metadata.volumes!.count;
  const byIndex = new Map(volumes.map((v) => [v.metadata.volumes!.index, v]));
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length > 0)
    throw new ServeInputError(
      `${first.path} is volume ${first.metadata.volumes!.index} of a set of ${count}; volume ${missing.join(', ')} of that set ${missing.length > 1 ? 'are' : 'is'} missing: give every volume of the set`,
    );
  const blobs = new Map<string, ServedBlob>();
  for (const r of first.metadata.blobs) {
    if (r.external) continue;
    const pieces = r.parts
      ? r.parts.map((p) => piece(byIndex.get(p.volume), p.digest))
      : [piece(byIndex.get(r.volume ?? first.metadata.volumes!.index), r.digest)];
    if (pieces.every((p): p is FilePiece => p !== undefined)) blobs.set(r.digest, served(r, pieces));
  }
  return { label: volumes.map((v) => v.path).join(' + '), metadata: first.metadata, blobs };
}

function piece(volume: CheckedFile | undefined, digest: string): FilePiece | undefined {
  const at = volume?.blobs.get(digest);
  return volume && at ? { file: volume.path, ...at } : undefined;
}

function missingExternals(units: ServedUnit[], blobs: Map<string, ServedBlob>): string[] {
  return units.flatMap((u) => {
    const missing = u.metadata.blobs.filter((b) => b.external && !blobs.has(b.digest)).length;
    if (missing === 0) return [];
    const against = (u.metadata.delta?.against ?? []).map((a) => printable(a, 80)).join(', ');
    return [
      `${u.label} is a delta: ${missing} of the blobs it needs are in none of the bundles given; serve it together with the bundle it was made against${against ? ` (${against})` : ''}`,
    ];
  });
}

/** Two bundles naming the same reference with different content: which one a node gets would be chance. */
function tagConflicts(units: ServedUnit[]): string[] {
  const claimed = new Map<string, { digest: string; label: string }>();
  const out: string[] = [];
  for (const u of units)
    for (const im of u.metadata.images) {
      if (im.tag === undefined) continue;
      const key = `${im.registry}/${im.repository}:${im.tag}`;
      const other = claimed.get(key);
      if (!other) claimed.set(key, { digest: im.digest, label: u.label });
      else if (other.digest !== im.digest)
        out.push(
          `${printable(key)} is ${im.digest} in ${u.label} but ${other.digest} in ${other.label}; serve them separately`,
        );
    }
  return out;
}
