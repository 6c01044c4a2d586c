import type { BlobLocation } from '../bundle/blob-ranges.js';
import type { BlobRecord, BundleMetadata } from '../bundle/format.js';
import { BundleFormatError, openBundle, type ParsedMetadata } from '../bundle/reader.js';
import { parseLayoutIndex } from '../bundle/layout-index.js';
import { compareIndex, judgeImage } from '../verify/judge.js';
import { checkBlob, type BlobSeen } from '../verify/scan.js';

export interface BundleIndex {
  metadata: BundleMetadata;
  blobs: Map<string, BlobLocation>;
}

/** The bundle was altered, not merely damaged: import refuses all of it (exit 3) and pushes nothing. */
export class TamperedBundleError extends BundleFormatError {
  override name = 'TamperedBundleError';
  constructor(path: string, problems: string[]) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more; \`airgap-bundle verify\` lists them)` : '';
    super(
      `${path} is not the bundle its metadata describes, so none of it is imported and nothing was pushed: ${problems[0]}${more}`,
    );
  }
}

/**
 * Where every blob sits in the tar, found by walking the headers and seeking
 * over the payloads of configs and layers: for a multi-GB bundle this reads a
 * few MB. The manifests are read, hashed and parsed on the way, and the whole
 * structure is checked before anything is pushed: no refused entry, every
 * carried blob where the metadata says, index.json as the metadata says, and
 * every image's manifests reaching only blobs its metadata lists, indexes
 * bounded in depth and free of cycles. Any of these failing means the archive
 * was altered, and a TamperedBundleError refuses it as a whole. A manifest
 * whose bytes do not match its digest is bit rot instead: its images fail at
 * import, the others go on. `parsed`: the metadata as the caller already read
 * it (and checked its signature), taken again if the file still holds those
 * bytes.
 */
export async function indexBundle(path: string, parsed?: ParsedMetadata): Promise<BundleIndex> {
  const scan = await scanStructure(path, parsed);
  const problems = [...scan.tampering, ...missingBlobs(scan), ...imageStructure(scan)];
  if (problems.length > 0) throw new TamperedBundleError(path, problems);
  return { metadata: scan.metadata, blobs: scan.blobs };
}

interface StructureScan {
  metadata: BundleMetadata;
  blobs: Map<string, BlobLocation>;
  /** Manifests and indexes read and judged; configs and layers by size only (hashed when uploaded). */
  seen: Map<string, BlobSeen>;
  tampering: string[];
}

async function scanStructure(path: string, parsed: ParsedMetadata | undefined): Promise<StructureScan> {
  const reading = await openBundle(path, parsed ? { parsed } : {});
  let metadata: BundleMetadata | undefined;
  let roles = new Map<string, BlobRecord>();
  const blobs = new Map<string, BlobLocation>();
  const seen = new Map<string, BlobSeen>();
  const tampering: string[] = [];
  let index: Buffer | undefined;
  try {
    for await (const entry of reading.entries()) {
      if (entry.type === 'metadata') {
        metadata = entry.metadata;
        roles = new Map(metadata.blobs.map((b) => [b.digest, b]));
      } else if (entry.type === 'index') index = entry.bytes;
      else if (entry.type === 'rejected') tampering.push(`entry "${entry.name}" refused: ${entry.reason}`);
      else if (entry.type === 'blob') {
        const record = roles.get(entry.digest);
        // The metadata's own string for the digest: one copy of each, however many maps name it.
        const digest = record?.digest ?? entry.digest;
        blobs.set(digest, { offset: entry.offset, size: entry.size });
        const isDocument = record?.role === 'manifest' || record?.role === 'index';
        seen.set(
          digest,
          isDocument ? await checkBlob(entry.digest, entry.size, entry.chunks(), record) : { size: entry.size },
        );
      }
    }
  } finally {
    await reading.close();
  }
  if (!metadata) throw new BundleFormatError(`${path}: no metadata`);
  tampering.push(...indexProblems(metadata, index));
  return { metadata, blobs, seen, tampering };
}

function indexProblems(metadata: BundleMetadata, index: Buffer | undefined): string[] {
  if (!index) return ['index.json is missing'];
  try {
    return compareIndex(metadata, parseLayoutIndex(index));
  } catch (err) {
    return [`index.json is unusable: ${(err as Error).message}`];
  }
}

/** Carried blobs (and parts) of this volume that the metadata lists and the tar lacks. */
function missingBlobs(scan: StructureScan): string[] {
  const here = scan.metadata.volumes?.index;
  const out: string[] = [];
  for (const b of scan.metadata.blobs) {
    if (b.external) continue;
    const pieces = b.parts ?? [{ digest: b.digest, volume: b.volume }];
    for (const p of pieces) {
      const inThisVolume = p.volume === undefined || p.volume === here || b.role === 'manifest' || b.role === 'index';
      if (inThisVolume && !scan.blobs.has(p.digest))
        out.push(`blob ${p.digest} is listed in the metadata but not in the archive`);
    }
  }
  return out;
}

/** Structural problems of the images: blobs reached but not listed, index cycles, nesting past the bound. */
function imageStructure(scan: StructureScan): string[] {
  // Configs and layers this run does not read: a delta's, another volume's, a cut blob's.
  const elsewhere = new Map<string, string[]>();
  for (const b of scan.metadata.blobs)
    if (b.role === 'config' || b.role === 'layer') if (!scan.seen.has(b.digest)) elsewhere.set(b.digest, []);
  return scan.metadata.images.flatMap((im) =>
    judgeImage(im, scan.seen, elsewhere).structural.map((p) => `${im.reference}: ${p}`),
  );
}
