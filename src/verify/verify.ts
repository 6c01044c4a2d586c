import type { BlobPart, BundleMetadata } from '../bundle/format.js';
import type { ParsedMetadata } from '../bundle/reader.js';
import { judgeImage, bounded, type ImageReport } from './judge.js';
import { scanBundle, type BlobSeen, type Scan, type SidecarCheck } from './scan.js';

export interface VerifyReport {
  bundle: string;
  ok: boolean;
  /** `reason` says why an invalid sidecar cannot be used. */
  sidecar: SidecarCheck;
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

/**
 * Checks a bundle in one sequential read: every blob against its digest and
 * size, JSON documents parsed, the whole file against the sidecar, then every
 * image walked from index.json down to its layers. Every problem is collected
 * and attributed to the images and platforms it breaks.
 */
export async function verifyBundle(
  path: string,
  opts: { onProgress?: (position: number) => void } = {},
): Promise<VerifyReport> {
  return report([await scanBundle(path, opts.onProgress)]);
}

/**
 * Checks several files at once: the volumes of one set (any subset, any order),
 * each read once. Blobs of volumes that were not given are not counted missing;
 * the report says which volumes are present, missing or damaged.
 */
export async function verifyBundles(
  paths: string[],
  opts: { onProgress?: (position: number) => void; parsed?: Map<string, ParsedMetadata> } = {},
): Promise<VerifyReport> {
  const scans: Scan[] = [];
  for (const p of paths) scans.push(await scanBundle(p, opts.onProgress, opts.parsed?.get(p)));
  return report(scans);
}

function report(scans: Scan[]): VerifyReport {
  const first = scans[0]!;
  const bundle = scans.map((s) => s.path).join(', ');
  const bytes = scans.reduce((n, s) => n + s.bytes, 0);
  const label = (s: Scan, p: string) => (scans.length > 1 ? `${s.path}: ${p}` : p);
  const problems = scans.flatMap((s) => s.problems.map((p) => label(s, p)));
  const sidecar =
    scans.find((s) => s.sidecar.status === 'mismatch')?.sidecar ??
    scans.find((s) => s.sidecar.status !== 'ok' && s.sidecar.status !== 'absent')?.sidecar ??
    first.sidecar;
  const metadata = first.metadata;
  if (!metadata)
    return {
      bundle,
      ok: false,
      sidecar,
      problems,
      images: [],
      blobs: { listed: 0, verified: 0, damaged: 0, missing: 0 },
      bytes,
    };

  const set = metadata.volumes?.set;
  for (const s of scans.slice(1)) {
    if (!s.metadata) continue;
    if (!set || s.metadata.volumes?.set !== set)
      problems.push(`${s.path} is not a volume of the same set as ${first.path}; verify them separately`);
  }
  const given = new Set(scans.map((s) => s.metadata?.volumes?.index).filter((i): i is number => i !== undefined));
  const seen = new Map<string, BlobSeen>();
  for (const s of scans) for (const [d, b] of s.seen) if (!seen.has(d) || seen.get(d)!.damage) seen.set(d, b);
  const elsewhere = blobsElsewhere(metadata, seen, given);
  const images = metadata.images.map((im) => judgeImage(im, seen, elsewhere).report);
  const carried = metadata.blobs.filter((b) => !elsewhere.has(b.digest));
  const listed = carried.length;
  const damaged = carried.filter((b) => seen.get(b.digest)?.damage !== undefined).length;
  const missing = carried.filter((b) => !seen.has(b.digest)).length;
  const sidecarOk = scans.every((s) => s.sidecar.status === 'ok' || s.sidecar.status === 'absent');
  const ok =
    problems.length === 0 &&
    images.every((i) => i.status === 'intact' || i.status === 'needs other volumes') &&
    damaged === 0 &&
    missing === 0 &&
    sidecarOk;
  const external = metadata.blobs.filter((b) => b.external).length;
  const volumes = metadata.volumes ? volumeReport(metadata.volumes.count, scans, given) : undefined;
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

/** Which volumes of a set were checked, which were not given, which are damaged. */
function volumeReport(count: number, scans: Scan[], given: Set<number>): NonNullable<VerifyReport['volumes']> {
  const damaged = scans
    .filter(
      (s) => s.problems.length > 0 || s.sidecar.status === 'mismatch' || [...s.seen.values()].some((b) => b.damage),
    )
    .map((s) => s.metadata?.volumes?.index ?? 0);
  return {
    count,
    present: [...given].sort((a, b) => a - b),
    missing: Array.from({ length: count }, (_, i) => i + 1).filter((i) => !given.has(i)),
    damaged: damaged.filter((i) => i > 0).sort((a, b) => a - b),
  };
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
