import { checkBundle, type BundleStructure, type Verdict } from '../bundle/open/structure.js';
import type { ImageReport } from '../bundle/open/judge.js';
import type { FileScan } from '../bundle/open/scan.js';
import type { ParsedMetadata } from '../bundle/reader.js';
import { bundleSignatureSource } from '../signatures/bundle-source.js';
import { checkSignatures, type ImageSignatures, type SignatureOptions } from '../signatures/check-images.js';
import { checkSidecar, type SidecarCheck } from './sidecar.js';

export interface VerifyReport {
  bundle: string;
  ok: boolean;
  /**
   * The bundle's verdict as every command sees it: `altered` and `unreadable`
   * bundles are refused whole, a `damaged` one's intact images are usable.
   */
  verdict: Verdict;
  /** `reason` says why an invalid sidecar cannot be used. */
  sidecar: SidecarCheck;
  tool?: { name: string; version: string };
  formatVersion?: number;
  /** Problems of the bundle as a whole: refused entries, layout files, metadata vs index.json, the sidecar. */
  problems: string[];
  images: ImageReport[];
  blobs: { listed: number; verified: number; damaged: number; missing: number };
  /** A delta: what it was made against, and how many blobs it expects the registry to hold. */
  delta?: { against: string[]; dependsOn: number };
  /** Whether the bundle carries a signature (checked against a key with --public-key). */
  signed?: boolean;
  /** A volume set: which volumes were checked, which are missing, which are damaged. */
  volumes?: { count: number; present: number[]; missing: number[]; damaged: number[] };
  /** With a signature policy: each image's verdict, from the signatures the bundle carries. */
  signatures?: ImageSignatures[];
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
  return verifyBundles([path], opts);
}

/**
 * Checks several files at once: the volumes of one set (any subset, any order),
 * each read once. Blobs of volumes that were not given are not counted missing;
 * the report says which volumes are present, missing or damaged.
 */
export async function verifyBundles(
  paths: string[],
  opts: {
    onProgress?: (position: number) => void;
    parsed?: Map<string, ParsedMetadata>;
    signatures?: SignatureOptions;
  } = {},
): Promise<VerifyReport> {
  const { signatures, ...read } = opts;
  const structure = await checkBundle(paths, { wholeFileHash: true, ...read });
  const sidecars: SidecarCheck[] = [];
  for (const f of structure.files) sidecars.push(await checkSidecar(f.path, f.wholeFileDigest));
  const out = report(structure, sidecars);
  // Signatures are judged only in a bundle that is what its metadata says.
  if (signatures && structure.metadata && (structure.verdict === 'intact' || structure.verdict === 'damaged'))
    out.signatures = await checkSignatures(
      structure.metadata.images,
      bundleSignatureSource(structure.files),
      signatures,
    );
  return out;
}

function report(structure: BundleStructure, sidecars: SidecarCheck[]): VerifyReport {
  const { files, metadata } = structure;
  const bundle = files.map((f) => f.path).join(', ');
  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  const sidecar =
    sidecars.find((s) => s.status === 'mismatch') ??
    sidecars.find((s) => s.status !== 'ok' && s.status !== 'absent') ??
    sidecars[0]!;
  const label = (f: FileScan, p: string) => (files.length > 1 ? `${f.path}: ${p}` : p);
  const sidecarReasons = sidecars.flatMap((s, i) => (s.reason ? [label(files[i]!, s.reason)] : []));
  const problems = [...structure.problems, ...sidecarReasons];
  const { listed, damaged, missing } = structure.blobs;
  const sidecarOk = sidecars.every((s) => s.status === 'ok' || s.status === 'absent');
  const base = {
    bundle,
    ok: structure.verdict === 'intact' && sidecarOk && problems.length === 0,
    verdict: structure.verdict,
    sidecar,
    problems,
    images: structure.images,
    blobs: { listed, verified: listed - damaged - missing, damaged, missing },
    bytes,
  };
  if (!metadata) return base;
  const external = metadata.blobs.filter((b) => b.external).length;
  return {
    ...base,
    tool: metadata.tool,
    formatVersion: metadata.formatVersion,
    ...(metadata.delta ? { delta: { against: metadata.delta.against, dependsOn: external } } : {}),
    ...(metadata.volumes ? { volumes: volumeReport(metadata.volumes.count, structure, sidecars) } : {}),
    signed: files.every((f) => f.signed),
  };
}

/** Which volumes of a set were checked, which were not given, which are damaged. */
function volumeReport(
  count: number,
  structure: BundleStructure,
  sidecars: SidecarCheck[],
): NonNullable<VerifyReport['volumes']> {
  const given = structure.volumesGiven;
  const damaged = structure.files
    .filter(
      (f, i) =>
        f.unreadable !== undefined ||
        f.altered.length > 0 ||
        sidecars[i]!.status === 'mismatch' ||
        sidecars[i]!.reason !== undefined ||
        [...f.seen.values()].some((b) => b.damage),
    )
    .map((f) => f.metadata?.volumes?.index ?? 0);
  return {
    count,
    present: [...given].sort((a, b) => a - b),
    missing: Array.from({ length: count }, (_, i) => i + 1).filter((i) => !given.has(i)),
    damaged: damaged.filter((i) => i > 0).sort((a, b) => a - b),
  };
}
