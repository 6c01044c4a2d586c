import { open } from 'node:fs/promises';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { TarFormatError, TarReader, type TarEntry } from '../tar/reader.js';
import { classifyEntryName, type EntryName } from './entry-names.js';
import { MAX_INDEX_BYTES, MAX_METADATA_BYTES, METADATA_NAME } from './format.js';
import { MetadataError, parseMetadata } from './metadata.js';
import type { BundleMetadata } from './format.js';
import { printable } from '../util/text.js';

/** The bundle is structurally unusable or hostile: exit 3, with what and where. */
export class BundleFormatError extends Error {
  override name = 'BundleFormatError';
}

export type BundleEntry =
  /** `bytes`: the entry exactly as stored, what a signature covers. */
  | { type: 'metadata'; metadata: BundleMetadata; bytes: Buffer }
  | { type: 'signature'; bytes: Buffer }
  | { type: 'oci-layout'; bytes: Buffer }
  | { type: 'index'; bytes: Buffer }
  /**
   * A blob. `chunks()` yields its bytes as borrowed views, each valid until the
   * next is requested; a consumer that does not read them has them skipped.
   * `size` is the tar header's, checked by the consumer against the metadata.
   */
  | { type: 'blob'; digest: string; size: number; offset: number; chunks: () => AsyncGenerator<Buffer> }
  /**
   * An entry refused and skipped unread (link, device, name outside the layout,
   * duplicate, oversized document). Never extracted, so skipping is safe; the
   * consumer reports it and treats the bundle as damaged.
   */
  | { type: 'rejected'; name: string; reason: string };

export interface ReadOptions {
  /** Hash the whole file too (the sidecar check), in the same single read; see `BundleReading.wholeFileDigest`. */
  wholeFileHash?: boolean;
  /** Called with the file position as the read progresses. */
  onProgress?: (position: number) => void;
  /**
   * This file's metadata as an earlier read of it parsed it: taken again when
   * the bytes read now are the same, instead of parsing them twice (at 10,000
   * images that is 18 MB of JSON).
   */
  parsed?: ParsedMetadata;
}

export interface ParsedMetadata {
  bytes: Buffer;
  metadata: BundleMetadata;
}

const COMPRESSED_MAGIC: Array<[string, Buffer]> = [
  ['gzip', Buffer.from([0x1f, 0x8b])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['bzip2', Buffer.from('BZh')],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
];

/** tar entry types a bundle may hold; links, devices and FIFOs never. */
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

const JSON_LIMITS: Partial<Record<EntryName['kind'], number>> = {
  metadata: MAX_METADATA_BYTES,
  signature: 64 * 1024,
  'oci-layout': 64 * 1024,
  index: MAX_INDEX_BYTES,
};

function classifyEntry(entry: TarEntry): EntryName | { kind: 'invalid'; reason: string } {
  const cls = classifyEntryName(entry.path);
  if (cls.kind === 'invalid') return cls;
  const isDir = entry.type === 'Directory';
  if (!isDir && !FILE_TYPES.has(entry.type))
    return { kind: 'invalid', reason: `a ${entry.type}; a bundle holds only regular files and folders` };
  if (isDir !== (cls.kind === 'directory')) return { kind: 'invalid', reason: `wrong entry type (${entry.type})` };
  return cls;
}

/** The metadata as read and, for a signed bundle, its signature. */
export interface BundleHead extends ParsedMetadata {
  signature: Buffer | undefined;
}

/**
 * The metadata and, for a signed bundle, its signature: the first two entries.
 * Enough to check a signature before anything else happens.
 */
export async function readHead(path: string): Promise<BundleHead> {
  const reading = await openBundle(path);
  let head: BundleHead | undefined;
  try {
    for await (const entry of reading.entries()) {
      if (entry.type === 'metadata') head = { metadata: entry.metadata, bytes: entry.bytes, signature: undefined };
      else if (entry.type === 'signature' && head) head.signature = entry.bytes;
      else break;
    }
  } finally {
    await reading.close();
  }
  if (!head) throw new BundleFormatError(`${path}: no ${METADATA_NAME} in the bundle`);
  return head;
}

/**
 * Reads the first entry only: the metadata. `inspect` and the import planner
 * need nothing else, so this is instant whatever the bundle size.
 */
export async function readMetadata(path: string): Promise<BundleMetadata> {
  return (await readParsedMetadata(path)).metadata;
}

/** readMetadata, with the bytes it was parsed from. */
export async function readParsedMetadata(path: string): Promise<ParsedMetadata> {
  const reading = await openBundle(path);
  try {
    for await (const entry of reading.entries()) {
      if (entry.type === 'metadata') return { bytes: entry.bytes, metadata: entry.metadata };
    }
  } finally {
    await reading.close();
  }
  throw new BundleFormatError(`${path}: no ${METADATA_NAME} in the bundle`);
}

export interface BundleReading {
  entries(): AsyncGenerator<BundleEntry>;
  /** sha256 of the whole file, when `wholeFileHash` was asked and every byte was read. */
  wholeFileDigest(): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * Opens a bundle for one sequential pass. Entries come in tar order and are
 * refused, with a BundleFormatError or a `rejected` entry, when they are not a
 * plain OCI layout: compressed input, links and special files, names outside
 * the layout, duplicates, oversized JSON, a truncated archive, metadata not
 * first. Nothing is ever written to disk and memory stays bounded.
 */
export async function openBundle(path: string, opts: ReadOptions = {}): Promise<BundleReading> {
  await rejectCompressed(path);
  const tar = await TarReader.open(path, { wholeFileHash: opts.wholeFileHash ?? false });
  return {
    entries: () => readEntries(path, tar, opts),
    wholeFileDigest: () => tar.wholeFileDigest(),
    close: () => tar.close(),
  };
}

/** Entries besides blobs: metadata, signature, oci-layout, index.json and the blobs/ folders. */
const FIXED_ENTRIES = 8;

/**
 * What the metadata says the tar holds: every carried blob and part, by digest,
 * with its size. The tar must agree: an entry it does not list, or lists with
 * another size, is refused (the archive was altered, not damaged by bit rot).
 */
function expectedBlobs(metadata: BundleMetadata): Map<string, number> {
  const out = new Map<string, number>();
  for (const b of metadata.blobs) {
    if (b.external) continue;
    if (b.parts) for (const p of b.parts) out.set(p.digest, p.size);
    else out.set(b.digest, b.size);
  }
  return out;
}

function checkBlobEntry(expected: Map<string, number>, digest: string, size: number): string | undefined {
  const want = expected.get(digest);
  if (want === undefined) return 'a blob the metadata does not list';
  if (want !== size) return `its size is ${size} bytes, the metadata says ${want}`;
  return undefined;
}

async function* readEntries(path: string, tar: TarReader, opts: ReadOptions): AsyncGenerator<BundleEntry> {
  const seen = new Set<string>();
  let expected: Map<string, number> | undefined;
  let count = 0;
  let first = true;
  try {
    for await (const entry of tar.entries()) {
      opts.onProgress?.(tar.position);
      const name = printable(entry.path);
      const cls = classifyEntry(entry);
      const key = entry.path.replace(/^\.\//, '').replace(/\/$/, '');
      if (first && cls.kind !== 'metadata') {
        throw new BundleFormatError(
          `${path}: not an airgap-bundle (the first entry must be ${METADATA_NAME}, found "${name}")`,
        );
      }
      first = false;
      // Bounded by what the metadata lists, so a flood of entries cannot grow memory.
      if (expected && ++count > expected.size + FIXED_ENTRIES) {
        throw new BundleFormatError(
          `${path}: the archive holds more entries than its metadata lists (${expected.size} blobs); it was altered`,
        );
      }
      if (cls.kind === 'invalid' || seen.has(key)) {
        yield { type: 'rejected', name, reason: cls.kind === 'invalid' ? cls.reason : 'appears twice' };
        continue;
      }
      seen.add(key);
      const limit = JSON_LIMITS[cls.kind];
      if (limit !== undefined && entry.size > limit) {
        if (cls.kind === 'metadata')
          throw new BundleFormatError(
            `${path}: entry "${name}" is ${entry.size} bytes, more than the ${limit}-byte limit`,
          );
        yield {
          type: 'rejected',
          name,
          reason: `${entry.size} bytes, more than the ${limit}-byte limit for this document`,
        };
        continue;
      }
      const read = await readEntry(path, tar, entry, cls, expected, opts.parsed);
      if (read?.type === 'metadata') expected = expectedBlobs(read.metadata);
      if (read) yield read;
    }
  } catch (err) {
    if (err instanceof TarFormatError)
      throw new BundleFormatError(
        `${path}: ${err.message}${/truncated/.test(err.message) ? '; copy the bundle again' : ''}`,
      );
    throw err;
  }
  if (first) throw new BundleFormatError(`${path}: the archive holds no entries`);
  opts.onProgress?.(tar.position);
}

/** One accepted entry's content: documents read whole, a blob handed out as chunks on demand. */
async function readEntry(
  path: string,
  tar: TarReader,
  entry: TarEntry,
  cls: Exclude<EntryName, { kind: 'invalid' }>,
  expected: Map<string, number> | undefined,
  parsed: ParsedMetadata | undefined,
): Promise<BundleEntry | undefined> {
  switch (cls.kind) {
    case 'directory':
      return undefined;
    case 'metadata': {
      const bytes = await collect(tar, entry);
      if (parsed?.bytes.equals(bytes)) return { type: 'metadata', metadata: parsed.metadata, bytes };
      return parseMetadataEntry(path, bytes);
    }
    case 'signature':
      return { type: 'signature', bytes: await collect(tar, entry) };
    case 'oci-layout':
      return { type: 'oci-layout', bytes: await collect(tar, entry) };
    case 'index':
      return { type: 'index', bytes: await collect(tar, entry) };
    case 'blob': {
      const refused = checkBlobEntry(expected!, cls.digest, entry.size);
      if (refused) return { type: 'rejected', name: printable(entry.path), reason: refused };
      return {
        type: 'blob',
        digest: cls.digest,
        size: entry.size,
        offset: entry.offset,
        chunks: () => tar.data(entry),
      };
    }
  }
}

function parseMetadataEntry(path: string, bytes: Buffer): Extract<BundleEntry, { type: 'metadata' }> {
  try {
    return { type: 'metadata', metadata: parseMetadata(bytes), bytes };
  } catch (err) {
    if (err instanceof MetadataError) throw new BundleFormatError(`${path}: ${err.message}`);
    throw err;
  }
}

/** Whether a blob entry should be buffered and parsed as JSON (manifests, indexes). */
export function isSmallDocument(size: number): boolean {
  return size <= MAX_MANIFEST_BYTES;
}

/**
 * A small entry's bytes in one buffer of the size its header gives (bounded by
 * JSON_LIMITS before this is called), each chunk copied in once: gathering
 * copies and then concatenating them held the metadata twice (36 MB at 10,000
 * images) just before it is parsed.
 */
async function collect(tar: TarReader, entry: TarEntry): Promise<Buffer> {
  const out = Buffer.allocUnsafe(entry.size);
  let filled = 0;
  for await (const c of tar.data(entry)) filled += c.copy(out, filled);
  return filled === entry.size ? out : out.subarray(0, filled);
}

async function rejectCompressed(path: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      `cannot open bundle ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`,
      { cause: err },
    );
  }
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await fh.read(head, 0, 8, 0);
    for (const [name, magic] of COMPRESSED_MAGIC) {
      if (bytesRead >= magic.length && head.subarray(0, magic.length).equals(magic)) {
        throw new BundleFormatError(
          `${path}: the file is ${name}-compressed; a bundle is a plain tar (decompress it first)`,
        );
      }
    }
  } finally {
    await fh.close();
  }
}
