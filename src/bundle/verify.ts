import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { readSmallRegularFile, SmallFileError } from '../util/small-file.js';
import { printable } from '../util/text.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm } from '../oci/digest.js';
import { parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { isIndexType } from '../oci/media-types.js';
import { formatPlatform } from '../oci/platform.js';
import { ANNOTATION_REF_NAME, MAX_INDEX_DEPTH, type BlobPart, type BundleMetadata, type ImageRecord } from './format.js';
import { BundleFormatError, isSmallDocument, openBundle } from './reader.js';
import { parseLayoutIndex } from './layout-index.js';
import { TarFormatError } from './tar-reader.js';
import { parseSidecar } from './sidecar.js';

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

export interface VerifyReport {
  bundle: string;
  ok: boolean;
  /** `reason` says why an invalid sidecar cannot be used. */
  sidecar: { status: 'ok' | 'mismatch' | 'absent' | 'invalid' | 'unchecked'; expected?: string; actual?: string; reason?: string };
  tool?: { name: string; version: string };
  formatVersion?: number;
  /** Problems of the bundle as a whole: refused entries, layout files, metadata vs index.json. */
  problems: string[];
  images: ImageReport[];
  blobs: { listed: number; verified: number; damaged: number; missing: number };
  /** A delta: what it was made against, and how many blobs it expects the registry to hold. */
  delta?: { against: string[]; dependsOn: number };
  /** Whether the bundle carries a signature (checked against a key with --public-key). */
  signed?: boolean;
  /** A volume set: which volumes were checked, which are missing, which are damaged. */
  volumes?: { count: number; present: number[]; missing: number[]; damaged: number[] };
  bytes: number;
}

export interface BlobSeen {
  size: number;
  /** Why the blob cannot be used, when it cannot. */
  damage?: string;
  parsed?: ParsedManifest;
}

/** What one sequential read of one file found. */
interface Scan {
  path: string;
  metadata: BundleMetadata | undefined;
  seen: Map<string, BlobSeen>;
  problems: string[];
  sidecar: VerifyReport['sidecar'];
  bytes: number;
  signed: boolean;
}

/** Every blob the tar may hold, by digest; a part is checked like a layer, by its own digest and size. */
function blobRecords(metadata: BundleMetadata): Map<string, BundleMetadata['blobs'][number]> {
  const records = new Map(metadata.blobs.map((b) => [b.digest, b]));
  for (const b of metadata.blobs) {
    for (const p of b.parts ?? []) if (!records.has(p.digest)) records.set(p.digest, { digest: p.digest, size: p.size, mediaType: b.mediaType, role: b.role });
  }
  return records;
}

async function scanBundle(path: string, onProgress?: (position: number) => void): Promise<Scan> {
  const problems: string[] = [];
  const seen = new Map<string, BlobSeen>();
  let metadata: BundleMetadata | undefined;
  let records = new Map<string, BundleMetadata['blobs'][number]>();
  let index: Descriptor[] | undefined;
  let sawLayout = false;
  let signed = false;

  let reading;
  try {
    reading = await openBundle(path, { wholeFileHash: true, ...(onProgress ? { onProgress } : {}) });
  } catch (err) {
    // Not a bundle at all (compressed, say): still a report, so --json always answers.
    if (!(err instanceof BundleFormatError)) throw err;
    return { path, metadata, seen, problems: [err.message.replace(`${path}: `, '')], sidecar: { status: 'unchecked' }, bytes: (await stat(path)).size, signed };
  }
  let wholeFile: string | undefined;
  try {
    for await (const entry of reading.entries()) {
      switch (entry.type) {
        case 'metadata':
          metadata = entry.metadata;
          records = blobRecords(metadata);
          break;
        case 'signature':
          signed = true;
          break;
        case 'oci-layout':
          sawLayout = true;
          if (!isLayoutFile(entry.bytes)) problems.push('oci-layout is not {"imageLayoutVersion": "1.0.0"}');
          break;
        case 'index':
          try {
            index = parseLayoutIndex(entry.bytes);
          } catch (err) {
            problems.push(`index.json is unusable: ${(err as Error).message}`);
          }
          break;
        case 'rejected':
          problems.push(`entry "${entry.name}" refused: ${entry.reason}`);
          break;
        case 'blob':
          seen.set(entry.digest, await checkBlob(entry.digest, entry.size, entry.chunks(), records.get(entry.digest)));
          break;
      }
    }
  } catch (err) {
    if (!(err instanceof BundleFormatError)) throw err;
    problems.push(err.message.replace(`${path}: `, ''));
  } finally {
    // A damaged archive still gets its checksum compared: the file is read to the end.
    wholeFile = await reading.wholeFileDigest().catch(() => undefined);
    await reading.close();
  }
  const bytes = (await stat(path)).size;
  if (metadata) {
    if (!sawLayout) problems.push('oci-layout file is missing');
    if (!index) {
      if (!problems.some((p) => p.startsWith('index.json'))) problems.push('index.json is missing');
    } else {
      problems.push(...compareIndex(metadata, index));
    }
  }
  const sidecar = await checkSidecar(path, wholeFile);
  if (sidecar.reason) problems.push(sidecar.reason);
  return { path, metadata, seen, problems, sidecar, bytes, signed };
}

/**
 * Checks a bundle in one sequential read: every blob against its digest and
 * size, JSON documents parsed, the whole file against the sidecar, then every
 * image walked from index.json down to its layers. Every problem is collected
 * and attributed to the images and platforms it breaks.
 */
export async function verifyBundle(path: string, opts: { onProgress?: (position: number) => void } = {}): Promise<VerifyReport> {
  return report([await scanBundle(path, opts.onProgress)]);
}

/**
 * Checks several files at once: the volumes of one set (any subset, any order),
 * each read once. Blobs of volumes that were not given are not counted missing;
 * the report says which volumes are present, missing or damaged.
 */
export async function verifyBundles(paths: string[], opts: { onProgress?: (position: number) => void } = {}): Promise<VerifyReport> {
  const scans: Scan[] = [];
  for (const p of paths) scans.push(await scanBundle(p, opts.onProgress));
  return report(scans);
}

function report(scans: Scan[]): VerifyReport {
  const first = scans[0]!;
  const bundle = scans.map((s) => s.path).join(', ');
  const bytes = scans.reduce((n, s) => n + s.bytes, 0);
  const label = (s: Scan, p: string) => (scans.length > 1 ? `${s.path}: ${p}` : p);
  const problems = scans.flatMap((s) => s.problems.map((p) => label(s, p)));
  const sidecar = scans.find((s) => s.sidecar.status === 'mismatch')?.sidecar ?? scans.find((s) => s.sidecar.status !== 'ok' && s.sidecar.status !== 'absent')?.sidecar ?? first.sidecar;
  const metadata = first.metadata;
  if (!metadata) return { bundle, ok: false, sidecar, problems, images: [], blobs: { listed: 0, verified: 0, damaged: 0, missing: 0 }, bytes };

  const set = metadata.volumes?.set;
  for (const s of scans.slice(1)) {
    if (!s.metadata) continue;
    if (!set || s.metadata.volumes?.set !== set) problems.push(`${s.path} is not a volume of the same set as ${first.path}; verify them separately`);
  }
  const given = new Set(scans.map((s) => s.metadata?.volumes?.index).filter((i): i is number => i !== undefined));
  const seen = new Map<string, BlobSeen>();
  for (const s of scans) for (const [d, b] of s.seen) if (!seen.has(d) || seen.get(d)!.damage) seen.set(d, b);
  // Configs and layers a delta leaves out, or that travel in volumes not given here.
  const elsewhere = new Map<string, string[]>();
  for (const b of metadata.blobs) {
    if (b.external) elsewhere.set(b.digest, []);
    else if (b.volume !== undefined && !given.has(b.volume)) elsewhere.set(b.digest, [`volume ${b.volume}`]);
    else if (b.parts) {
      const whole = assembleParts(b.parts, seen, given);
      if (whole === 'missing') continue;
      if (whole) seen.set(b.digest, whole);
      else elsewhere.set(b.digest, [...new Set(b.parts.filter((p) => !given.has(p.volume)).map((p) => `volume ${p.volume}`))]);
    }
  }
  const images = metadata.images.map((im) => judgeImage(im, seen, elsewhere).report);
  const carried = metadata.blobs.filter((b) => !elsewhere.has(b.digest));
  const listed = carried.length;
  const damaged = carried.filter((b) => seen.get(b.digest)?.damage !== undefined).length;
  const missing = carried.filter((b) => !seen.has(b.digest)).length;
  const sidecarOk = scans.every((s) => s.sidecar.status === 'ok' || s.sidecar.status === 'absent');
  const ok = problems.length === 0 && images.every((i) => i.status === 'intact' || i.status === 'needs other volumes') && damaged === 0 && missing === 0 && sidecarOk;
  const external = metadata.blobs.filter((b) => b.external).length;
  let volumes: VerifyReport['volumes'];
  if (metadata.volumes) {
    const count = metadata.volumes.count;
    const damagedVolumes = scans.filter((s) => s.problems.length > 0 || s.sidecar.status === 'mismatch' || [...s.seen.values()].some((b) => b.damage)).map((s) => s.metadata?.volumes?.index ?? 0);
    volumes = {
      count,
      present: [...given].sort((a, b) => a - b),
      missing: Array.from({ length: count }, (_, i) => i + 1).filter((i) => !given.has(i)),
      damaged: damagedVolumes.filter((i) => i > 0).sort((a, b) => a - b),
    };
  }
  return {
    bundle,
    ok,
    sidecar,
    tool: metadata.tool,
    formatVersion: metadata.formatVersion,
    problems: bounded(problems),
    images,
    blobs: { listed, verified: listed - damaged - missing, damaged, missing },
    ...(metadata.delta ? { delta: { against: metadata.delta.against, dependsOn: external } } : {}),
    ...(volumes ? { volumes } : {}),
    signed: scans.every((s) => s.signed),
    bytes,
  };
}

/**
 * A blob cut into parts, judged from the parts the given volumes hold: damaged
 * or missing as soon as one of those is, whole when all are there and intact,
 * and undefined (it needs other volumes) otherwise. Each part was hashed on its
 * own; their digests were taken from the whole, verified blob at export.
 */
function assembleParts(parts: BlobPart[], seen: Map<string, BlobSeen>, given: Set<number>): BlobSeen | 'missing' | undefined {
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

/** Hashes one blob from borrowed chunks, keeping the bytes only of small JSON documents. */
export async function checkBlob(digest: string, size: number, chunks: AsyncIterable<Buffer>, record: BundleMetadata['blobs'][number] | undefined): Promise<BlobSeen> {
  const wantsJson = record ? record.role === 'manifest' || record.role === 'index' : isSmallDocument(size);
  const keep = wantsJson && isSmallDocument(size);
  const kept: Buffer[] = [];
  let damage: string | undefined;
  if (record && record.size !== size) damage = `size is ${size} bytes, the metadata says ${record.size}`;
  const hash = createHash(digestAlgorithm(digest));
  let got = 0;
  try {
    for await (const c of chunks) {
      hash.update(c);
      got += c.length;
      if (keep) kept.push(Buffer.from(c));
    }
  } catch (err) {
    if (!(err instanceof BundleFormatError) && !(err instanceof TarFormatError)) throw err;
    return { size, damage: `cut short: ${err.message}` };
  }
  const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
  if (actual !== digest) damage ??= `content does not match its digest (got ${actual})`;
  const out: BlobSeen = { size: got, ...(damage ? { damage } : {}) };
  if (!damage && wantsJson) {
    if (!keep) out.damage = `a ${record?.role} of ${size} bytes exceeds the manifest size limit`;
    else {
      try {
        out.parsed = parseManifest(Buffer.concat(kept), record?.mediaType, digest);
      } catch (err) {
        if (record) out.damage = `not a usable ${record.role}: ${(err as Error).message}`;
      }
    }
  }
  return out;
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

/** What walking one image found, for verify's report and import's structural check. */
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
export function judgeImage(im: ImageRecord, seen: Map<string, BlobSeen>, elsewhere: Map<string, string[]>): ImageJudgement {
  const walk = new ImageWalk(im, seen, elsewhere);
  const problems: Problem[] = [];
  const platforms: PlatformReport[] = [];
  const isIndex = isIndexType(im.mediaType);
  problems.push(...walk.check({ mediaType: im.mediaType, digest: im.digest, size: im.size }, isIndex ? 'index' : 'manifest', 0));
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
  const texts = [...problems.map((p) => p.text), ...(status === 'needs other volumes' ? [`its remaining blobs are in ${[...needs].sort().join(', ')}`] : [])];
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
    if (this.onPath.has(d.digest)) return [{ text: `${label} ${d.digest} contains itself (an index cycle)`, damaged: true, structural: true }];
    const known = this.verdicts.get(d.digest);
    if (known) return known;
    this.onPath.add(d.digest);
    const verdict = this.judge(d, label, depth);
    this.onPath.delete(d.digest);
    this.verdicts.set(d.digest, verdict);
    return verdict;
  }

  private judge(d: Descriptor, label: string, depth: number): Problem[] {
    if (!this.listed.has(d.digest)) return [{ text: `${label} ${d.digest} is needed, but the metadata does not list it for this image`, damaged: true, structural: true }];
    const b = this.seen.get(d.digest);
    // A delta's dependency (checked against the registry at import) or a blob of another volume.
    const where = this.elsewhere.get(d.digest);
    if (!b && where) {
      for (const w of where) this.needs.add(w);
      return [];
    }
    if (!b) return [{ text: `${label} ${d.digest} is missing`, damaged: false }];
    if (b.damage) return [{ text: `${label} ${d.digest}: ${b.damage}`, damaged: true }];
    if (b.size !== d.size) return [{ text: `${label} ${d.digest} is ${b.size} bytes, its descriptor says ${d.size}`, damaged: true }];
    const p = b.parsed;
    if (!p) {
      if (label === 'manifest' || label === 'index') return [{ text: `${label} ${d.digest} could not be read as a manifest`, damaged: true }];
      return [];
    }
    if (p.kind === 'image') return [...this.check(p.config, 'config', depth + 1), ...p.layers.flatMap((l) => this.check(l, 'layer', depth + 1))];
    // The top index's children are walked by the caller, platform by platform.
    if (depth === 0) return [];
    if (depth >= MAX_INDEX_DEPTH) return [{ text: `index ${d.digest} nests indexes more than ${MAX_INDEX_DEPTH} deep`, damaged: true, structural: true }];
    return p.manifests.filter((c) => !this.absent.has(c.digest)).flatMap((c) => this.check(c, isIndexType(c.mediaType) ? 'index' : 'manifest', depth + 1));
  }
}

/** Reports list at most this many problems each; the count of the rest is given. */
const MAX_LISTED_PROBLEMS = 100;

function bounded(problems: string[]): string[] {
  if (problems.length <= MAX_LISTED_PROBLEMS) return problems;
  return [...problems.slice(0, MAX_LISTED_PROBLEMS), `… and ${problems.length - MAX_LISTED_PROBLEMS} more`];
}

export function compareIndex(metadata: BundleMetadata, index: Descriptor[]): string[] {
  const out: string[] = [];
  const byName = new Map(index.map((d) => [d.annotations?.[ANNOTATION_REF_NAME], d]));
  for (const im of metadata.images) {
    const d = byName.get(im.reference);
    if (!d) out.push(`index.json has no entry for ${im.reference}`);
    else if (d.digest !== im.digest || d.size !== im.size || d.mediaType !== im.mediaType) {
      out.push(`index.json entry for ${im.reference} (${d.digest}) differs from the metadata (${im.digest})`);
    }
  }
  const names = new Set(metadata.images.map((im) => im.reference));
  for (const d of index) {
    const name = d.annotations?.[ANNOTATION_REF_NAME];
    if (!name || !names.has(name)) out.push(`index.json entry ${name !== undefined ? printable(name) : d.digest} is not in the metadata`);
  }
  return out;
}

function isLayoutFile(bytes: Buffer): boolean {
  try {
    return (JSON.parse(bytes.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion === '1.0.0';
  } catch {
    return false;
  }
}

/** A `sha256sum` line is under 200 bytes; a sidecar much larger than that is not one. */
const MAX_SIDECAR_BYTES = 4096;

async function checkSidecar(path: string, actual: string | undefined): Promise<VerifyReport['sidecar']> {
  let text: string | undefined;
  try {
    text = await readSmallRegularFile(`${path}.sha256`, MAX_SIDECAR_BYTES);
  } catch (err) {
    if (!(err instanceof SmallFileError)) throw err;
    return { status: 'invalid', reason: `${path}.sha256 ${err.message}` };
  }
  if (text === undefined) return { status: 'absent' };
  const parsed = parseSidecar(text);
  if (!parsed) return { status: 'invalid', reason: `${path}.sha256 is not a sha256sum line` };
  if (actual === undefined) return { status: 'unchecked', expected: parsed.sha256 };
  return { status: parsed.sha256 === actual ? 'ok' : 'mismatch', expected: parsed.sha256, actual };
}
