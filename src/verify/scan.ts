import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm } from '../oci/digest.js';
import { parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { readSmallRegularFile, SmallFileError } from '../util/small-file.js';
import type { BundleMetadata } from '../bundle/format.js';
import { parseLayoutIndex } from '../bundle/layout-index.js';
import { BundleFormatError, isSmallDocument, openBundle, type ParsedMetadata } from '../bundle/reader.js';
import { parseSidecar } from '../bundle/sidecar.js';
import { TarFormatError } from '../tar/reader.js';
import { compareIndex } from './judge.js';

/**
 * One sequential read of one bundle file: every blob hashed and sized, JSON
 * documents parsed, the whole file hashed for the sidecar. What it found is
 * judged elsewhere (judge.ts), image by image.
 */

/** The `.sha256` sidecar against the whole file; `reason` says why an invalid one cannot be used. */
export interface SidecarCheck {
  status: 'ok' | 'mismatch' | 'absent' | 'invalid' | 'unchecked';
  expected?: string;
  actual?: string;
  reason?: string;
}

export interface BlobSeen {
  size: number;
  /** Why the blob cannot be used, when it cannot. */
  damage?: string;
  parsed?: ParsedManifest;
}

/** What one sequential read of one file found. */
export interface Scan {
  path: string;
  metadata: BundleMetadata | undefined;
  seen: Map<string, BlobSeen>;
  problems: string[];
  sidecar: SidecarCheck;
  bytes: number;
  signed: boolean;
}

/** Every blob the tar may hold, by digest; a part is checked like a layer, by its own digest and size. */
function blobRecords(metadata: BundleMetadata): Map<string, BundleMetadata['blobs'][number]> {
  const records = new Map(metadata.blobs.map((b) => [b.digest, b]));
  for (const b of metadata.blobs) {
    for (const p of b.parts ?? [])
      if (!records.has(p.digest))
        records.set(p.digest, { digest: p.digest, size: p.size, mediaType: b.mediaType, role: b.role });
  }
  return records;
}

async function notABundle(path: string, err: BundleFormatError): Promise<Scan> {
  const problems = [err.message.replace(`${path}: `, '')];
  const bytes = (await stat(path)).size;
  return {
    path,
    metadata: undefined,
    seen: new Map(),
    problems,
    sidecar: { status: 'unchecked' },
    bytes,
    signed: false,
  };
}

export async function scanBundle(
  path: string,
  onProgress?: (position: number) => void,
  parsed?: ParsedMetadata,
): Promise<Scan> {
  const problems: string[] = [];
  const seen = new Map<string, BlobSeen>();
  let metadata: BundleMetadata | undefined;
  let records = new Map<string, BundleMetadata['blobs'][number]>();
  let index: Descriptor[] | undefined;
  let sawLayout = false;
  let signed = false;

  let reading;
  try {
    reading = await openBundle(path, {
      wholeFileHash: true,
      ...(onProgress ? { onProgress } : {}),
      ...(parsed ? { parsed } : {}),
    });
  } catch (err) {
    // Not a bundle at all (compressed, say): still a report, so --json always answers.
    if (!(err instanceof BundleFormatError)) throw err;
    return notABundle(path, err);
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

/** Hashes one blob from borrowed chunks, keeping the bytes only of small JSON documents. */
export async function checkBlob(
  digest: string,
  size: number,
  chunks: AsyncIterable<Buffer>,
  record: BundleMetadata['blobs'][number] | undefined,
): Promise<BlobSeen> {
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

function isLayoutFile(bytes: Buffer): boolean {
  try {
    return (JSON.parse(bytes.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion === '1.0.0';
  } catch {
    return false;
  }
}

/** A `sha256sum` line is under 200 bytes; a sidecar much larger than that is not one. */
const MAX_SIDECAR_BYTES = 4096;

async function checkSidecar(path: string, actual: string | undefined): Promise<SidecarCheck> {
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
