import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { HashingStream } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { classifyEntryName, type EntryName } from './entry-names.js';
import { MAX_INDEX_BYTES, MAX_METADATA_BYTES, METADATA_NAME } from './format.js';
import { MetadataError, parseMetadata } from './metadata.js';
import type { BundleMetadata } from './format.js';

/** The bundle is structurally unusable or hostile: exit 3, with what and where. */
export class BundleFormatError extends Error {
  override name = 'BundleFormatError';
}

export type BundleEntry =
  | { type: 'metadata'; metadata: BundleMetadata }
  | { type: 'oci-layout'; bytes: Buffer }
  | { type: 'index'; bytes: Buffer }
  /**
   * A blob. `body` is the raw entry stream; a consumer that does not read it
   * lets the reader drain it. `size` is the tar header's, checked by the consumer
   * against what the metadata expects.
   */
  | { type: 'blob'; digest: string; size: number; body: Readable }
  /**
   * An entry refused and skipped unread (link, device, name outside the layout,
   * duplicate, oversized document). Never extracted, so skipping is safe; the
   * consumer reports it and treats the bundle as damaged.
   */
  | { type: 'rejected'; name: string; reason: string };

export interface ReadOptions {
  /** Hash the whole file too (the sidecar check), in the same single read. */
  wholeFileHash?: HashingStream;
  /** Bytes read from the file so far, for progress. */
  onBytes?: (n: number) => void;
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
  'oci-layout': 64 * 1024,
  index: MAX_INDEX_BYTES,
};

function classifyEntry(entry: ReadEntry): EntryName | { kind: 'invalid'; reason: string } {
  const cls = classifyEntryName(entry.path);
  if (cls.kind === 'invalid') return cls;
  const isDir = entry.type === 'Directory';
  if (!isDir && !FILE_TYPES.has(entry.type)) return { kind: 'invalid', reason: `a ${entry.type}; a bundle holds only regular files and folders` };
  if (isDir !== (cls.kind === 'directory')) return { kind: 'invalid', reason: `wrong entry type (${entry.type})` };
  return cls;
}

/**
 * Reads the first entry only: the metadata. `inspect` and the import planner
 * need nothing else, so this is instant whatever the bundle size.
 */
export async function readMetadata(path: string): Promise<BundleMetadata> {
  for await (const entry of readBundle(path)) {
    if (entry.type === 'metadata') return entry.metadata;
  }
  throw new BundleFormatError(`${path}: no ${METADATA_NAME} in the bundle`);
}

/**
 * Streams a bundle tar once, yielding its entries in order, never touching the
 * disk. It refuses, with a BundleFormatError, anything that is not a plain OCI
 * layout: compressed input, links and special files, names outside the layout,
 * duplicates, oversized JSON, a truncated archive, metadata not first.
 *
 * Memory stays bounded: the tar parser honours backpressure from the consumer,
 * and only JSON documents under their size limits are buffered.
 */
export async function* readBundle(path: string, opts: ReadOptions = {}): AsyncGenerator<BundleEntry> {
  await rejectCompressed(path);
  const parser = new Parser({ strict: true, maxMetaEntrySize: 64 * 1024 });
  const queue: Array<ReadEntry> = [];
  let failure: Error | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  parser.on('entry', (e: ReadEntry) => {
    queue.push(e);
    notify();
  });
  parser.on('error', (err: Error) => {
    failure ??= tarError(path, err);
    notify();
  });
  parser.on('warn', (code: string, message: string) => {
    failure ??= tarError(path, new Error(`${code}: ${message}`));
    notify();
  });
  parser.on('end', () => {
    ended = true;
    notify();
  });

  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  file.on('error', (err) => {
    failure ??= new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
    notify();
  });
  let source: NodeJS.ReadableStream = file;
  if (opts.wholeFileHash || opts.onBytes) {
    const tap = opts.wholeFileHash ?? new PassThrough();
    if (opts.onBytes) tap.on('data', (c: Buffer) => opts.onBytes!(c.length));
    source = file.pipe(tap);
  }
  let bytesIn = 0;
  source.on('data', (c: Buffer) => (bytesIn += c.length));
  source.on('end', () => {
    if (bytesIn === 0) failure ??= new BundleFormatError(`${path}: the file is empty`);
  });
  source.pipe(parser as unknown as NodeJS.WritableStream);

  const seen = new Set<string>();
  let first = true;
  let sawEnd = false;
  try {
    for (;;) {
      if (failure) throw failure;
      const entry = queue.shift();
      if (!entry) {
        if (ended) {
          sawEnd = true;
          break;
        }
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      const name = printable(entry.path);
      const cls = classifyEntry(entry);
      const key = entry.path.replace(/^\.\//, '').replace(/\/$/, '');
      const wasFirst = first;
      first = false;
      if (wasFirst && cls.kind !== 'metadata') {
        throw new BundleFormatError(`${path}: not an airgap-bundle (the first entry must be ${METADATA_NAME}, found "${name}")`);
      }
      if (cls.kind === 'invalid' || seen.has(key)) {
        entry.resume();
        yield { type: 'rejected', name, reason: cls.kind === 'invalid' ? cls.reason : 'appears twice' };
        continue;
      }
      seen.add(key);
      const where = `${path}: entry "${name}"`;
      const limit = JSON_LIMITS[cls.kind];
      if (limit !== undefined && entry.size > limit) {
        if (cls.kind === 'metadata') throw new BundleFormatError(`${where} is ${entry.size} bytes, more than the ${limit}-byte limit`);
        entry.resume();
        yield { type: 'rejected', name, reason: `${entry.size} bytes, more than the ${limit}-byte limit for this document` };
        continue;
      }

      switch (cls.kind) {
        case 'directory':
          entry.resume();
          break;
        case 'metadata': {
          const bytes = await collect(entry);
          try {
            yield { type: 'metadata', metadata: parseMetadata(bytes) };
          } catch (err) {
            if (err instanceof MetadataError) throw new BundleFormatError(`${path}: ${err.message}`);
            throw err;
          }
          break;
        }
        case 'oci-layout':
          yield { type: 'oci-layout', bytes: await collect(entry) };
          break;
        case 'index':
          yield { type: 'index', bytes: await collect(entry) };
          break;
        case 'blob': {
          const body = entry as unknown as Readable;
          yield { type: 'blob', digest: cls.digest, size: entry.size, body };
          // Whatever the consumer left unread is drained so the parser moves on.
          if (!entry.emittedEnd) {
            entry.resume();
            await new Promise<void>((resolve) => (entry.emittedEnd ? resolve() : entry.once('end', () => resolve())));
          }
          break;
        }
      }
    }
  } finally {
    if (!sawEnd) {
      file.destroy();
      parser.abort?.(new Error('reader closed'));
    }
  }
  if (failure) throw failure;
}

/** Whether a blob entry should be buffered and parsed as JSON (manifests, indexes). */
export function isSmallDocument(size: number): boolean {
  return size <= MAX_MANIFEST_BYTES;
}

/** Buffers an entry whose size was already checked against its limit. */
async function collect(entry: ReadEntry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of entry) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejectCompressed(path: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot open bundle ${path}: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`);
  }
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await fh.read(head, 0, 8, 0);
    for (const [name, magic] of COMPRESSED_MAGIC) {
      if (bytesRead >= magic.length && head.subarray(0, magic.length).equals(magic)) {
        throw new BundleFormatError(`${path}: the file is ${name}-compressed; a bundle is a plain tar (decompress it first)`);
      }
    }
  } finally {
    await fh.close();
  }
}

function tarError(path: string, err: Error): BundleFormatError {
  const msg = err.message.replace(/^TAR_[A-Z_]+:\s*/, '');
  if (/unexpected eof|truncated/i.test(err.message)) return new BundleFormatError(`${path}: the archive is truncated (${msg}); copy the bundle again`);
  return new BundleFormatError(`${path}: not a valid tar archive (${msg})`);
}

/** Entry names come from the file: never echo control characters to a terminal. */
function printable(name: string): string {
  const clean = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}
