import type { BlobLocation } from '../blob-ranges.js';
import type { BlobPart, BundleMetadata } from '../format.js';
import { BundleFormatError } from '../reader.js';
import type { BlobSeen } from './blob-check.js';
import { bounded, judgeImage, type ImageReport } from './judge.js';
import { scanFile, type FileScan, type ScanOptions } from './scan.js';

/**
 * The one gate into a bundle. Every command that reads more than a bundle's
 * metadata opens it here, so the same bundle gets the same verdict from each:
 *
 * - `unreadable`: not a bundle, compressed, truncated, metadata unusable;
 * - `altered`: something export never writes — an entry outside the layout,
 *   a link, an extended header, a blob the metadata does not list or lists
 *   with another size, a listed blob taken out, index.json and the metadata
 *   disagreeing, a manifest that matches its digest but breaks a bound, an
 *   image reaching blobs its metadata does not list. Refused whole;
 * - `damaged`: bytes that do not match their digest (bit rot): the images
 *   using them are unusable, the others are fine;
 * - `intact`.
 */

export type Verdict = 'intact' | 'damaged' | 'altered' | 'unreadable';

/** The bundle was altered, or cannot be read as one: nothing of it is used (exit 3). */
export class TamperedBundleError extends BundleFormatError {
  override name = 'TamperedBundleError';
  constructor(path: string, problems: string[], consequence: string) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more; \`airgap-bundle verify\` lists them)` : '';
    super(`${path} is not the bundle its metadata describes, so ${consequence}: ${problems[0]}${more}`);
  }
}

/** One file that passed the gate: its metadata and where each blob is. Configs and layers are checked as they are read. */
export interface CheckedFile {
  path: string;
  metadata: BundleMetadata;
  blobs: Map<string, BlobLocation>;
  seen: Map<string, BlobSeen>;
}

/**
 * Opens one file for a consumer that copies blobs out by offset (import,
 * serve, talos-cache): headers walked, manifests read and hashed, configs and
 * layers sought over. An unreadable or altered file is refused with
 * `consequence` saying what was therefore not done ("nothing was pushed").
 */
export async function openCheckedFile(
  path: string,
  consequence: string,
  parsed?: ScanOptions['parsed'],
): Promise<CheckedFile> {
  const scan = await scanFile(path, { read: 'documents', ...(parsed ? { parsed } : {}) });
  if (scan.unreadable !== undefined) throw new BundleFormatError(`${path}: ${scan.unreadable}`);
  if (scan.altered.length > 0) throw new TamperedBundleError(path, scan.altered, consequence);
  if (!scan.metadata) throw new BundleFormatError(`${path}: no metadata`);
  return { path, metadata: scan.metadata, blobs: scan.blobs, seen: scan.seen };
}

/** A whole bundle (one file, or volumes of one set) checked to its last byte, for verify's report. */
export interface BundleStructure {
  files: FileScan[];
  /** The first file's metadata; undefined when it is no readable bundle. */
  metadata: BundleMetadata | undefined;
  verdict: Verdict;
  /** Problems of the bundle as a whole (what makes it unreadable or altered), labelled by file when several. */
  problems: string[];
  images: ImageReport[];
  blobs: { listed: number; damaged: number; missing: number };
  /** Volume numbers of a set that were given. */
  volumesGiven: Set<number>;
}

/**
 * Reads every file once, every blob hashed, and judges the bundle: the
 * verdict, the problems of the whole, and per image which platforms are
 * intact, damaged, incomplete or wait for volumes not given.
 */
export async function checkBundle(
  paths: string[],
  opts: Omit<ScanOptions, 'read' | 'parsed'> & { parsed?: Map<string, NonNullable<ScanOptions['parsed']>> } = {},
): Promise<BundleStructure> {
  const files: FileScan[] = [];
  for (const path of paths) {
    const parsed = opts.parsed?.get(path);
    files.push(
      await scanFile(path, {
        read: 'every-blob',
        ...(opts.wholeFileHash ? { wholeFileHash: true } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        ...(parsed ? { parsed } : {}),
      }),
    );
  }
  return judgeSet(files);
}

function judgeSet(files: FileScan[]): BundleStructure {
  const first = files[0]!;
  const label = (f: FileScan, p: string) => (files.length > 1 ? `${f.path}: ${p}` : p);
  const unreadable = files.filter((f) => f.unreadable !== undefined).map((f) => label(f, f.unreadable!));
  const problems = [...unreadable, ...files.flatMap((f) => f.altered.map((p) => label(f, p)))];
  const metadata = first.metadata;
  const volumesGiven = new Set(
    files.map((f) => f.metadata?.volumes?.index).filter((i): i is number => i !== undefined),
  );
  if (!metadata)
    return {
      files,
      metadata,
      verdict: 'unreadable',
      problems,
      images: [],
      blobs: { listed: 0, damaged: 0, missing: 0 },
      volumesGiven,
    };
  problems.push(...strangers(files));
  const seen = new Map<string, BlobSeen>();
  for (const f of files) for (const [d, b] of f.seen) if (!seen.has(d) || seen.get(d)!.damage) seen.set(d, b);
  const elsewhere = blobsElsewhere(metadata, seen, volumesGiven);
  const images = metadata.images.map((im) => judgeImage(im, seen, elsewhere).report);
  const carried = metadata.blobs.filter((b) => !elsewhere.has(b.digest));
  const damaged = carried.filter((b) => seen.get(b.digest)?.damage !== undefined).length;
  const missing = carried.filter((b) => !seen.has(b.digest)).length;
  const broken = images.some((i) => i.status === 'damaged' || i.status === 'incomplete') || damaged + missing > 0;
  const verdict: Verdict =
    unreadable.length > 0 ? 'unreadable' : problems.length > 0 ? 'altered' : broken ? 'damaged' : 'intact';
  return {
    files,
    metadata,
    verdict,
    problems: bounded(problems),
    images,
    blobs: { listed: carried.length, damaged, missing },
    volumesGiven,
  };
}

/** Files given with the first that are not volumes of its set. */
function strangers(files: FileScan[]): string[] {
  const set = files[0]!.metadata?.volumes?.set;
  return files
    .slice(1)
    .filter((f) => f.metadata && (!set || f.metadata.volumes?.set !== set))
    .map((f) => `${f.path} is not a volume of the same set as ${files[0]!.path}; verify them separately`);
}

/**
 * Configs and layers a delta leaves out, or that travel in volumes not given
 * here (with the volumes named); a blob cut into parts whose parts are all
 * given is put together into `seen` instead.
 */
function blobsElsewhere(
  metadata: BundleMetadata,
  seen: Map<string, BlobSeen>,
  given: Set<number>,
): Map<string, string[]> {
  const elsewhere = new Map<string, string[]>();
  for (const b of metadata.blobs) {
    if (b.external) elsewhere.set(b.digest, []);
    else if (b.volume !== undefined && !given.has(b.volume)) elsewhere.set(b.digest, [`volume ${b.volume}`]);
    else if (b.parts) {
      const whole = assembleParts(b.parts, seen, given);
      if (whole === 'missing') continue;
      if (whole) seen.set(b.digest, whole);
      else
        elsewhere.set(b.digest, [
          ...new Set(b.parts.filter((p) => !given.has(p.volume)).map((p) => `volume ${p.volume}`)),
        ]);
    }
  }
  return elsewhere;
}

/**
 * A blob cut into parts, judged from the parts the given volumes hold: damaged
 * or missing as soon as one of those is, whole when all are there and intact,
 * and undefined (it needs other volumes) otherwise. Each part was hashed on its
 * own; their digests were taken from the whole, verified blob at export.
 */
function assembleParts(
  parts: BlobPart[],
  seen: Map<string, BlobSeen>,
  given: Set<number>,
): BlobSeen | 'missing' | undefined {
  let size = 0;
  let complete = true;
  for (const [i, p] of parts.entries()) {
    if (!given.has(p.volume)) {
      complete = false;
      continue;
    }
    const s = seen.get(p.digest);
    const label = `part ${i + 1} of ${parts.length} (${p.digest}, volume ${p.volume})`;
    if (!s) return 'missing';
    if (s.damage) return { size, damage: `${label}: ${s.damage}` };
    size += s.size;
  }
  return complete ? { size } : undefined;
}
