import { stat } from 'node:fs/promises';
import type { BlobLocation } from '../blob-ranges.js';
import type { BlobRecord, BundleMetadata } from '../format.js';
import { parseLayoutIndex } from '../layout-index.js';
import { BundleFormatError, openBundle, type BundleEntry, type ParsedMetadata } from '../reader.js';
import { checkBlob, type BlobSeen } from './blob-check.js';
import { compareIndex, judgeImage } from './judge.js';

/**
 * One sequential read of one bundle file, and everything that file alone can
 * tell: where each entry is, what each document holds, and which problems
 * mean the file was altered. Every command that reads more than a bundle's
 * metadata reads it through here, so the same file gets the same verdict from
 * each of them.
 */

export interface ScanOptions {
  /**
   * `every-blob` hashes every config and layer too (verify); `documents` reads
   * and hashes only manifests and indexes and seeks over the rest, whose bytes
   * the consumer checks as it copies them (import, serve, talos-cache).
   */
  read: 'every-blob' | 'documents';
  /** Hash the whole file in the same read, for the sidecar check (`every-blob` only). */
  wholeFileHash?: boolean;
  /** Called with the file position as the read progresses. */
  onProgress?: (position: number) => void;
  /** The metadata as an earlier read of this file parsed it, taken again when the bytes are the same. */
  parsed?: ParsedMetadata;
}

export interface FileScan {
  path: string;
  /** Undefined when the file is no readable bundle (then `unreadable` says why). */
  metadata: BundleMetadata | undefined;
  /** Where each blob entry's bytes are in the file. */
  blobs: Map<string, BlobLocation>;
  /** What reading each blob found; `documents` records configs and layers by size only. */
  seen: Map<string, BlobSeen>;
  /** Why the file cannot be read as a bundle at all: not a tar, compressed, truncated, metadata unusable. */
  unreadable?: string;
  /** What shows the file was altered: each one refuses the whole bundle. */
  altered: string[];
  /** sha256 of the whole file, when asked and every byte was read. */
  wholeFileDigest?: string;
  signed: boolean;
  bytes: number;
}

export async function scanFile(path: string, opts: ScanOptions): Promise<FileScan> {
  const scan: FileScan = {
    path,
    metadata: undefined,
    blobs: new Map(),
    seen: new Map(),
    altered: [],
    signed: false,
    bytes: 0,
  };
  const layout = { present: false, index: undefined as Buffer | undefined };
  let reading;
  try {
    reading = await openBundle(path, {
      wholeFileHash: opts.read === 'every-blob' && (opts.wholeFileHash ?? false),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.parsed ? { parsed: opts.parsed } : {}),
    });
  } catch (err) {
    if (!(err instanceof BundleFormatError)) throw err;
    return { ...scan, unreadable: withoutPath(path, err), bytes: await sizeOf(path) };
  }
  try {
    await readEntries(reading.entries(), scan, layout, opts.read);
  } catch (err) {
    if (!(err instanceof BundleFormatError)) throw err;
    scan.unreadable = withoutPath(path, err);
  } finally {
    // A damaged archive still gets its checksum compared: the file is read to the end.
    const whole = await reading.wholeFileDigest().catch(() => undefined);
    if (whole) scan.wholeFileDigest = whole;
    await reading.close();
  }
  scan.bytes = await sizeOf(path);
  if (scan.metadata && scan.unreadable === undefined) scan.altered.push(...fileProblems(scan, layout));
  return scan;
}

async function readEntries(
  entries: AsyncGenerator<BundleEntry>,
  scan: FileScan,
  layout: { present: boolean; index: Buffer | undefined },
  read: ScanOptions['read'],
): Promise<void> {
  let records = new Map<string, BlobRecord>();
  for await (const entry of entries) {
    switch (entry.type) {
      case 'metadata':
        scan.metadata = entry.metadata;
        records = blobRecords(entry.metadata);
        break;
      case 'signature':
        scan.signed = true;
        break;
      case 'oci-layout':
        layout.present = true;
        if (!isLayoutFile(entry.bytes)) scan.altered.push('oci-layout is not {"imageLayoutVersion": "1.0.0"}');
        break;
      case 'index':
        layout.index = entry.bytes;
        break;
      case 'rejected':
        scan.altered.push(`entry "${entry.name}" refused: ${entry.reason}`);
        break;
      case 'blob': {
        const record = records.get(entry.digest);
        // The metadata's own string for the digest: one copy of each, however many maps name it.
        const digest = record?.digest ?? entry.digest;
        scan.blobs.set(digest, { offset: entry.offset, size: entry.size });
        const isDocument = record?.role === 'manifest' || record?.role === 'index';
        scan.seen.set(
          digest,
          read === 'every-blob' || isDocument
            ? await checkBlob(entry.digest, entry.size, entry.chunks(), record)
            : { size: entry.size },
        );
        break;
      }
    }
  }
}

/** Every blob the tar may hold, by digest; a part is checked like a layer, by its own digest and size. */
function blobRecords(metadata: BundleMetadata): Map<string, BlobRecord> {
  const records = new Map(metadata.blobs.map((b) => [b.digest, b]));
  for (const b of metadata.blobs)
    for (const p of b.parts ?? [])
      if (!records.has(p.digest))
        records.set(p.digest, { digest: p.digest, size: p.size, mediaType: b.mediaType, role: b.role });
  return records;
}

/**
 * What the whole file shows once read: the layout files as export writes
 * them, index.json naming exactly the metadata's images, every blob of this
 * volume present, no document that breaks a bound, and every image reaching
 * only what its metadata lists.
 */
function fileProblems(scan: FileScan, layout: { present: boolean; index: Buffer | undefined }): string[] {
  const metadata = scan.metadata!;
  return [
    ...(layout.present ? [] : ['oci-layout file is missing']),
    ...indexProblems(metadata, layout.index),
    ...missingBlobs(metadata, scan.blobs),
    ...invalidDocuments(scan.seen),
    ...imageStructure(metadata, scan.seen),
  ];
}

function indexProblems(metadata: BundleMetadata, index: Buffer | undefined): string[] {
  if (!index) return ['index.json is missing'];
  try {
    return compareIndex(metadata, parseLayoutIndex(index));
  } catch (err) {
    return [`index.json is unusable: ${(err as Error).message}`];
  }
}

/**
 * Carried blobs (and parts) of this volume that the metadata lists and the tar
 * lacks: export writes every one, so a missing one was taken out.
 */
function missingBlobs(metadata: BundleMetadata, blobs: Map<string, BlobLocation>): string[] {
  const here = metadata.volumes?.index;
  const out: string[] = [];
  for (const b of metadata.blobs) {
    if (b.external) continue;
    const isDocument = b.role === 'manifest' || b.role === 'index';
    for (const p of b.parts ?? [{ digest: b.digest, volume: b.volume }]) {
      const inThisVolume = p.volume === undefined || p.volume === here || isDocument;
      if (inThisVolume && !blobs.has(p.digest))
        out.push(`blob ${p.digest} is listed in the metadata but not in the archive`);
    }
  }
  return out;
}

/** Documents that match their digest but break a bound, reached by an image or not. */
function invalidDocuments(seen: Map<string, BlobSeen>): string[] {
  return [...seen].filter(([, b]) => b.invalid).map(([d, b]) => `manifest ${d}: ${b.invalid}`);
}

/** Structural problems of the images: blobs reached but not listed, index cycles, nesting past the bound. */
function imageStructure(metadata: BundleMetadata, seen: Map<string, BlobSeen>): string[] {
  // Configs and layers this file does not carry: a delta's, another volume's, a cut blob's.
  const elsewhere = new Map<string, string[]>();
  for (const b of metadata.blobs)
    if ((b.role === 'config' || b.role === 'layer') && !seen.has(b.digest)) elsewhere.set(b.digest, []);
  return metadata.images.flatMap((im) =>
    judgeImage(im, seen, elsewhere).structural.map((p) => `${im.reference}: ${p}`),
  );
}

function isLayoutFile(bytes: Buffer): boolean {
  try {
    return (JSON.parse(bytes.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion === '1.0.0';
  } catch {
    return false;
  }
}

function withoutPath(path: string, err: Error): string {
  return err.message.startsWith(`${path}: `) ? err.message.slice(path.length + 2) : err.message;
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path)).size;
}
