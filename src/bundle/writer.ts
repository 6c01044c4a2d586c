import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import ssri from 'ssri';
import type { BlobCache } from './blob-cache.js';
import {
  BUNDLE_FORMAT,
  FORMAT_VERSION,
  INDEX_NAME,
  MAX_INDEX_BYTES,
  METADATA_NAME,
  SIGNATURE_NAME,
  OCI_LAYOUT_NAME,
  blobEntryName,
  type BundleMetadata,
  type ImageRecord,
  type BlobRecord,
} from './format.js';
import { bytesEntry, directoryEntry, endOfArchive, fileEntry, type EntryStamp } from './tar-entries.js';
import { TarSink } from './tar-sink.js';
import { sidecarLine } from './sidecar.js';
import { buildIndex } from './layout-index.js';
import { MetadataError, parseMetadata } from './metadata.js';
import { blobEntries } from './volume-content.js';
import { processAlive } from '../util/process.js';

export interface WriteResult {
  path: string;
  sidecar: string;
  bytes: number;
  sha256: string;
  /** SRI form of the same checksum (`sha256-<base64>`). */
  integrity: string;
  metadata: BundleMetadata;
}

export interface WriteOptions {
  output: string;
  /** Signs the metadata bytes; the signature is stored after the metadata and as NAME.tar.sig. */
  sign?: (metadataBytes: Buffer) => Buffer;
  /** From SOURCE_DATE_EPOCH: sets entry mtimes (the metadata records it too). */
  sourceDateEpoch?: number;
  onBytes?: (n: number) => void;
  /** Settles when a blob is in the cache: the tar can be written while downloads go on. */
  ready?: (digest: string) => Promise<void>;
}

/** Temporary files being written right now: what an interrupted export must remove. */
export const activePartials = new Set<string>();

/** The temporary name a bundle is written under, beside its final name. */
export function partialPath(output: string): string {
  return join(dirname(output), `.${basename(output)}.partial-${process.pid}`);
}

export function buildMetadata(
  images: ImageRecord[],
  blobs: BlobRecord[],
  opts: { tool: { name: string; version: string }; platforms: string[] | null; sourceDateEpoch?: number; deltaAgainst?: string[] },
): BundleMetadata {
  return {
    format: BUNDLE_FORMAT,
    formatVersion: FORMAT_VERSION,
    tool: opts.tool,
    ...(opts.sourceDateEpoch !== undefined ? { created: new Date(opts.sourceDateEpoch * 1000).toISOString() } : {}),
    platforms: opts.platforms,
    images,
    blobs,
    ...(opts.deltaAgainst && opts.deltaAgainst.length > 0 ? { delta: { against: opts.deltaAgainst } } : {}),
  };
}

/** The bundle would be refused by the reader on the isolated side. */
export class UnreadableBundleError extends Error {
  override name = 'UnreadableBundleError';
}

/**
 * No bundle is written that the isolated side would refuse: the metadata goes
 * through the reader's own validation, and index.json through its size limit,
 * before the first byte of the bundle is written.
 */
function assertReadable(metadataBytes: Buffer, indexBytes: Buffer): void {
  const advice = 'split the image list into several bundles';
  if (indexBytes.length > MAX_INDEX_BYTES) throw new UnreadableBundleError(`index.json would be ${indexBytes.length} bytes, more than the ${MAX_INDEX_BYTES} a bundle may hold; ${advice}`);
  try {
    parseMetadata(metadataBytes);
  } catch (err) {
    if (!(err instanceof MetadataError)) throw err;
    throw new UnreadableBundleError(`the bundle would be refused when read (${err.message}); ${advice}`);
  }
}

/** A byte range of a blob, copied into the tar as it is (a whole blob, or a part of one). */
export interface BlobPiece {
  of: string;
  offset: number;
  size: number;
}

export interface BundleDocuments {
  metadataBytes: Buffer;
  signature?: Buffer;
  stamp: EntryStamp;
}

/** The bundle's documents: metadata bytes, its signature, the entry stamp. */
export function bundleDocuments(metadata: BundleMetadata, opts: Pick<WriteOptions, 'sign' | 'sourceDateEpoch'>): BundleDocuments {
  const metadataBytes = Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`);
  assertReadable(metadataBytes, buildIndex(metadata.images));
  const signature = opts.sign?.(metadataBytes);
  return { metadataBytes, ...(signature ? { signature } : {}), stamp: { mtime: new Date((opts.sourceDateEpoch ?? 0) * 1000) } };
}

/** Every byte of the tar, in order: bytes in memory, and ranges of blobs to copy. */
export function* bundleEntries(metadata: BundleMetadata, docs: BundleDocuments): Generator<Buffer | BlobPiece> {
  const { stamp } = docs;
  yield* bytesEntry(METADATA_NAME, docs.metadataBytes, stamp);
  if (docs.signature) yield* bytesEntry(SIGNATURE_NAME, docs.signature, stamp);
  yield* bytesEntry(OCI_LAYOUT_NAME, Buffer.from('{"imageLayoutVersion":"1.0.0"}\n'), stamp);
  yield* bytesEntry(INDEX_NAME, buildIndex(metadata.images), stamp);
  yield* directoryEntry('blobs', stamp);
  const algorithms = [...new Set(metadata.blobs.map((b) => b.digest.split(':')[0]!))].sort();
  for (const alg of algorithms) yield* directoryEntry(`blobs/${alg}`, stamp);
  for (const e of blobEntries(metadata)) {
    for (const piece of fileEntry(blobEntryName(e.digest), e.of, e.size, stamp, e.offset)) {
      yield Buffer.isBuffer(piece) ? piece : { of: piece.file, offset: piece.offset, size: piece.size };
    }
  }
  yield endOfArchive();
}

/**
 * Writes the bundle tar and its `sha256sum` sidecar from blobs in the cache, in
 * tar order. Both are written under temporary names in the destination folder
 * and renamed only when complete, so the final name never holds a partial bundle.
 */
export async function writeBundle(cache: BlobCache, metadata: BundleMetadata, opts: WriteOptions): Promise<WriteResult> {
  await removeStalePartials(opts.output);
  const tmp = partialPath(opts.output);
  const docs = bundleDocuments(metadata, opts);
  let sink: TarSink | undefined;
  activePartials.add(tmp);
  try {
    sink = await TarSink.create(tmp, opts.onBytes);
    for (const piece of bundleEntries(metadata, docs)) {
      if (Buffer.isBuffer(piece)) await sink.append(piece);
      else {
        await opts.ready?.(piece.of);
        await sink.appendFile(cache.path(piece.of), piece.offset, piece.size);
      }
    }
    const bytes = sink.bytes;
    const sha256 = await sink.finish();
    sink = undefined;
    return await publishBundle(tmp, opts.output, { bytes, sha256, metadata, ...(docs.signature ? { signature: docs.signature } : {}) });
  } catch (err) {
    const written = sink?.bytes ?? 0;
    await sink?.close();
    await rm(tmp, { force: true });
    throw diskFull(err, opts.output, written, metadata) ?? err;
  } finally {
    activePartials.delete(tmp);
  }
}

/** The message for a full disk while a bundle is written, or undefined for any other error. */
function diskFull(err: unknown, output: string, written: number, metadata: BundleMetadata): Error | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  const needed = metadata.blobs.filter((b) => !b.external).reduce((n, b) => n + b.size, 0);
  return new Error(
    `no space left in ${dirname(output)} while writing ${basename(output)}: ${written} of about ${needed} bytes written (removed); free space or choose another -o folder, then rerun (fetched blobs stay in the cache)`,
  );
}

/**
 * Gives a complete tar on disk (`tmp`, fsynced) its final name, with the sidecar
 * and the detached signature written first under temporary names: a reader that
 * sees NAME.tar sees a whole bundle.
 */
export async function publishBundle(tmp: string, output: string, done: { bytes: number; sha256: string; metadata: BundleMetadata; signature?: Buffer }): Promise<WriteResult> {
  const sidecar = `${output}.sha256`;
  const extras = [{ tmp: `${tmp}.sha256`, final: sidecar, text: sidecarLine(done.sha256, basename(output)) }];
  if (done.signature) extras.push({ tmp: `${tmp}.sig`, final: `${output}.sig`, text: done.signature.toString('utf8') });
  for (const e of extras) activePartials.add(e.tmp);
  try {
    for (const e of extras) await writeSmallFile(e.tmp, e.text);
    await rename(tmp, output);
    for (const e of extras) await rename(e.tmp, e.final);
  } catch (err) {
    for (const e of extras) await rm(e.tmp, { force: true });
    throw err;
  } finally {
    for (const e of extras) activePartials.delete(e.tmp);
  }
  const integrity = ssri.fromHex(done.sha256, 'sha256').toString();
  return { path: output, sidecar, bytes: done.bytes, sha256: done.sha256, integrity, metadata: done.metadata };
}

/**
 * Temporary files of earlier runs that were killed (SIGKILL, power loss): named
 * after a process that no longer exists, they can only be garbage.
 */
export async function removeStalePartials(output: string): Promise<void> {
  for (const path of await stalePartials(output)) await rm(path, { force: true });
}

/** Temporary files beside `output` left by processes that no longer exist. */
export async function stalePartials(output: string): Promise<string[]> {
  const prefix = `.${basename(output)}.partial-`;
  let names: string[];
  try {
    names = await readdir(dirname(output));
  } catch {
    return [];
  }
  return names
    .filter((name) => {
      if (!name.startsWith(prefix)) return false;
      const pid = Number(/^(\d+)/.exec(name.slice(prefix.length))?.[1]);
      return Number.isInteger(pid) && pid !== process.pid && !processAlive(pid);
    })
    .map((name) => join(dirname(output), name));
}

export async function writeSmallFile(path: string, text: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
