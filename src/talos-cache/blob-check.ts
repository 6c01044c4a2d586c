import { DamagedBlobError } from './source.js';
import type { CheckUnit } from './ring-worker.js';

/**
 * Where a config's or layer's bytes are: one range of one bundle file, or, for
 * a blob cut into parts across volumes, one range per part, each named by its
 * own digest (each part is checked, and the whole again).
 */
export interface BlobSpan {
  digest: string;
  size: number;
  ranges: BlobRange[];
}

export interface BlobRange {
  path: string;
  offset: number;
  size: number;
  /** The digest these bytes must have: the blob's, or the part's. */
  digest: string;
}

/** What the blob-checking thread walks: the layer's pieces as units, and who to blame for each. */
export interface CheckPlan {
  units: CheckUnit[];
  /** The error for unit i's range, or for the whole blob it ends. */
  damaged(unit: number, whole: boolean): DamagedBlobError;
}

export function checkPlan(pieces: Array<Buffer | BlobSpan>): CheckPlan {
  const units: CheckUnit[] = [];
  const blame: Array<{ range: BlobRange; span: BlobSpan }> = [];
  for (const p of pieces) {
    if (Buffer.isBuffer(p)) {
      const last = units[units.length - 1];
      // Bytes made in memory are only skipped: neighbours are one unit.
      if (last?.digest === '') last.size += p.length;
      else if (p.length > 0) units.push({ size: p.length, digest: '' });
      blame.length = units.length;
      continue;
    }
    const inParts = p.ranges.length > 1 || p.ranges[0]?.digest !== p.digest;
    p.ranges.forEach((range, i) => {
      const unit: CheckUnit = { size: range.size, digest: range.digest };
      if (inParts && i === 0) unit.first = true;
      if (inParts && i === p.ranges.length - 1) unit.whole = p.digest;
      units.push(unit);
      blame[units.length - 1] = { range, span: p };
    });
  }
  return {
    units,
    damaged: (unit, whole) => {
      const b = blame[unit];
      if (!b) return new DamagedBlobError('the bundle', 'unknown');
      return whole
        ? new DamagedBlobError(b.span.ranges[0]!.path, b.span.digest)
        : new DamagedBlobError(b.range.path, b.range.digest);
    },
  };
}
