import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { readBlob, readSmallBlob, type BlobLocation } from '../bundle/blob-ranges.js';
import type { BlobRecord, BundleMetadata } from '../bundle/format.js';
import { BundleFormatError } from '../bundle/reader.js';
import { openCheckedFile, type CheckedFile } from '../bundle/open/structure.js';
import { DigestMismatchError } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { UserInputError } from '../util/user-input.js';
import type { BlobSpan } from './blob-check.js';
import { printable } from '../util/text.js';

/**
 * The bundles an image cache is built from, read in place: one bundle, the
 * volumes of a set, or a delta with the bundle(s) it was made against. Each
 * file's structure is checked first (headers walked, manifests hashed: an
 * altered bundle is refused whole, exit 3); then every byte copied out is read
 * by offset and hashed on the way, and a blob that does not match refuses the
 * whole build, naming the blob.
 */

/** A blob whose bytes do not match its digest: the bundle is damaged (exit 3). */
export class DamagedBlobError extends BundleFormatError {
  override name = 'DamagedBlobError';
  constructor(bundle: string, digest: string) {
    super(
      `${printable(bundle)} is damaged: blob ${digest} does not match its digest, so no image cache was written; copy the bundle again (\`airgap-bundle verify\` lists every damaged blob)`,
    );
  }
}

interface Located {
  path: string;
  at: BlobLocation;
}

type Opened = CheckedFile;

export interface BundleSource {
  /** The bundle whose images are cached: the delta when a delta is given with its base, else the first. */
  metadata: BundleMetadata;
  /** A manifest's verified bytes; throws naming the blob when it is damaged or absent. */
  manifest(digest: string): Buffer;
  /**
   * Refuses, before anything is written, a blob that is in none of the files
   * given, or that a manifest lists with another size than the bundle carries.
   */
  requireBlobs(blobs: Iterable<{ digest: string; size: number }>): void;
  /** A config's or layer's bytes, hashed as they are read; throws DamagedBlobError at the end on a mismatch. */
  blob(digest: string, onBytes?: (n: number) => void): AsyncGenerator<Buffer>;
  /** Where a config's or layer's bytes are, for a reader that hashes them itself (see BlobCheck). */
  span(digest: string): BlobSpan;
  /** Sum of the sizes of the files given. */
  bytes: number;
}

export async function openBundles(paths: string[]): Promise<BundleSource> {
  let bytes = 0;
  for (const p of paths) bytes += await sizeOf(p);
  const opened: Opened[] = [];
  for (const path of paths) opened.push(await openCheckedFile(path, 'no image cache was written'));
  const primary = primaryGroup(opened);
  const metadata = primary[0]!.metadata;
  const other = opened.find((o) => !primary.includes(o));
  if (other && !metadata.delta)
    throw new UserInputError(
      `${printable(other.path)} is neither a volume of the same set as ${printable(primary[0]!.path)} nor the base of a delta given with it; build one cache per bundle`,
    );
  const where = locate([...primary, ...opened.filter((o) => !primary.includes(o))]);
  const manifests = await readManifests(metadata, where);
  const records = new Map(metadata.blobs.map((b) => [b.digest, b]));
  return {
    metadata,
    bytes,
    manifest: (digest) => {
      const got = manifests.get(digest);
      if (Buffer.isBuffer(got)) return got;
      throw got ?? new BundleFormatError(`manifest ${digest} is not in the bundle`);
    },
    requireBlobs: (blobs) => {
      for (const { digest, size } of blobs) {
        const record = records.get(digest);
        const carried = record?.size ?? where.get(digest)?.at.size;
        if (carried !== undefined && carried !== size)
          throw new BundleFormatError(
            `a manifest lists blob ${digest} as ${size} bytes, the bundle carries ${carried}; the bundle was altered`,
          );
        requireBlob(digest, record, where, metadata);
      }
    },
    blob: (digest, onBytes) => readWhole(records.get(digest), digest, where, onBytes),
    span: (digest) => spanOf(records.get(digest), digest, where),
  };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    throw new UserInputError(`bundle ${printable(path)} does not exist`);
  }
}

/**
 * The files whose images are cached: a volume set is one bundle (any order,
 * any subset); when exactly one of the bundles given is a delta, its images
 * are the ones wanted and the others are what it was made against.
 */
function primaryGroup(opened: Opened[]): Opened[] {
  const setOf = (o: Opened) => o.metadata.volumes?.set ?? o.path;
  const deltas = [...new Set(opened.filter((o) => o.metadata.delta).map(setOf))];
  const key = deltas.length === 1 ? deltas[0]! : setOf(opened[0]!);
  return opened.filter((o) => setOf(o) === key);
}

/** Where each blob (or part) is, in the wanted bundle first, then in the others. */
function locate(opened: Opened[]): Map<string, Located> {
  const out = new Map<string, Located>();
  for (const o of opened) for (const [d, at] of o.blobs) if (!out.has(d)) out.set(d, { path: o.path, at });
  return out;
}

/** Every manifest and index, read and hashed; a damaged one is kept as its error, raised only if it is needed. */
async function readManifests(
  metadata: BundleMetadata,
  where: Map<string, Located>,
): Promise<Map<string, Buffer | Error>> {
  const out = new Map<string, Buffer | Error>();
  for (const b of metadata.blobs) {
    if (b.role !== 'manifest' && b.role !== 'index') continue;
    const loc = where.get(b.digest);
    if (!loc) continue;
    const bytes = await readSmallBlob(loc.path, b.digest, loc.at, MAX_MANIFEST_BYTES);
    out.set(b.digest, bytes ?? new DamagedBlobError(loc.path, b.digest));
  }
  return out;
}

function requireBlob(
  digest: string,
  record: BlobRecord | undefined,
  where: Map<string, Located>,
  metadata: BundleMetadata,
): void {
  const pieces = record?.parts ?? [{ digest, volume: record?.volume }];
  const missing = pieces.filter((p) => !where.has(p.digest));
  if (missing.length === 0) return;
  if (record?.external)
    throw new UserInputError(
      `blob ${digest} is left out of this delta bundle (made against ${printable(metadata.delta?.against.join(', ') ?? 'another bundle', 300)}); give that bundle too: talos-cache DELTA.tar BASE.tar -o …`,
    );
  const volumes = [...new Set(missing.map((p) => p.volume).filter((v) => v !== undefined))];
  if (volumes.length > 0)
    throw new UserInputError(
      `blob ${digest} is in volume ${volumes.join(', ')} of ${metadata.volumes?.count ?? '?'}, not given; give every volume the images need`,
    );
  throw new BundleFormatError(`blob ${digest} is needed by an image but is not in the bundle`);
}

/** A whole blob, or the parts it was cut into across volumes, each hashed, and the whole hashed again. */
async function* readWhole(
  record: BlobRecord | undefined,
  digest: string,
  where: Map<string, Located>,
  onBytes?: (n: number) => void,
): AsyncGenerator<Buffer> {
  if (!record?.parts) {
    yield* readHashed(where.get(digest)!, digest, onBytes);
    return;
  }
  const whole = createHash('sha256');
  let size = 0;
  for (const part of record.parts) {
    for await (const chunk of readHashed(where.get(part.digest)!, part.digest, onBytes)) {
      whole.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  }
  if (`sha256:${whole.digest('hex')}` !== digest || size !== record.size)
    throw new DamagedBlobError(where.get(record.parts[0]!.digest)!.path, digest);
}

function spanOf(record: BlobRecord | undefined, digest: string, where: Map<string, Located>): BlobSpan {
  const pieces = record?.parts ?? [{ digest }];
  const ranges = pieces.map((p) => {
    const loc = where.get(p.digest)!;
    return { path: loc.path, offset: loc.at.offset, size: loc.at.size, digest: p.digest };
  });
  const size = ranges.reduce((n, r) => n + r.size, 0);
  // The parts must add up to the blob (a part's own size is checked by its digest).
  if (record && size !== record.size) throw new DamagedBlobError(ranges[0]!.path, digest);
  return { digest, size, ranges };
}

async function* readHashed(loc: Located, digest: string, onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of readBlob(loc.path, digest, loc.at, onBytes)) yield chunk as Buffer;
  } catch (err) {
    if (err instanceof DigestMismatchError) throw new DamagedBlobError(loc.path, digest);
    throw err;
  }
}
