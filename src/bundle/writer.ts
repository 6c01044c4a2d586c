import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import ssri from 'ssri';
import { MediaType } from '../oci/media-types.js';
import type { BlobCache } from './blob-cache.js';
import {
  ANNOTATION_CONTAINERD_NAME,
  ANNOTATION_REF_NAME,
  BUNDLE_FORMAT,
  FORMAT_VERSION,
  INDEX_NAME,
  METADATA_NAME,
  SIGNATURE_NAME,
  OCI_LAYOUT_NAME,
  blobEntryName,
  type BundleMetadata,
  type ImageRecord,
  type BlobRecord,
} from './format.js';
import { bytesEntry, directoryEntry, endOfArchive, fileEntry, type EntryStamp, type FileRange } from './tar-entries.js';
import { TarSink } from './tar-sink.js';
import { sidecarLine } from './sidecar.js';
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
function partialPath(output: string): string {
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

/** `index.json`: one descriptor per requested reference, named so skopeo and containerd find it. */
export function buildIndex(images: ImageRecord[]): Buffer {
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map((im) => ({
      mediaType: im.mediaType,
      digest: im.digest,
      size: im.size,
      annotations: { [ANNOTATION_CONTAINERD_NAME]: im.reference, [ANNOTATION_REF_NAME]: im.reference },
    })),
  };
  return Buffer.from(`${JSON.stringify(index, null, 2)}\n`);
}

/**
 * Writes the bundle tar and its `sha256sum` sidecar. Both are written under
 * temporary names in the destination folder and renamed only when complete, so
 * the final name never holds a partial bundle.
 */
export async function writeBundle(cache: BlobCache, metadata: BundleMetadata, opts: WriteOptions): Promise<WriteResult> {
  await removeStalePartials(opts.output);
  const stamp: EntryStamp = { mtime: new Date((opts.sourceDateEpoch ?? 0) * 1000) };
  const tmp = partialPath(opts.output);
  const sidecar = `${opts.output}.sha256`;
  const sidecarTmp = `${tmp}.sha256`;

  const metadataBytes = Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`);
  const signature = opts.sign?.(metadataBytes);
  const signatureFile = `${opts.output}.sig`;
  function* entries(): Generator<Buffer | FileRange | { ready: string }> {
    yield* bytesEntry(METADATA_NAME, metadataBytes, stamp);
    if (signature) yield* bytesEntry(SIGNATURE_NAME, signature, stamp);
    yield* bytesEntry(OCI_LAYOUT_NAME, Buffer.from('{"imageLayoutVersion":"1.0.0"}\n'), stamp);
    yield* bytesEntry(INDEX_NAME, buildIndex(metadata.images), stamp);
    yield* directoryEntry('blobs', stamp);
    const algorithms = [...new Set(metadata.blobs.map((b) => b.digest.split(':')[0]!))].sort();
    for (const alg of algorithms) yield* directoryEntry(`blobs/${alg}`, stamp);
    for (const e of blobEntries(metadata)) {
      yield { ready: e.of };
      yield* fileEntry(blobEntryName(e.digest), cache.path(e.of), e.size, stamp, e.offset);
    }
    yield endOfArchive();
  }

  let sink: TarSink | undefined;
  activePartials.add(tmp).add(sidecarTmp).add(`${tmp}.sig`);
  try {
    sink = await TarSink.create(tmp, opts.onBytes);
    for (const piece of entries()) {
      if (Buffer.isBuffer(piece)) await sink.append(piece);
      else if ('ready' in piece) await opts.ready?.(piece.ready);
      else await sink.appendFile(piece.file, piece.offset, piece.size);
    }
    const bytes = sink.bytes;
    const sha256 = await sink.finish();
    sink = undefined;
    await writeSmallFile(sidecarTmp, sidecarLine(sha256, basename(opts.output)));
    if (signature) await writeSmallFile(`${tmp}.sig`, signature.toString('utf8'));
    await rename(tmp, opts.output);
    await rename(sidecarTmp, sidecar);
    if (signature) await rename(`${tmp}.sig`, signatureFile);
    const integrity = ssri.fromHex(sha256, 'sha256').toString();
    return { path: opts.output, sidecar, bytes, sha256, integrity, metadata };
  } catch (err) {
    const written = sink?.bytes ?? 0;
    await sink?.close();
    await rm(tmp, { force: true });
    await rm(sidecarTmp, { force: true });
    await rm(`${tmp}.sig`, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      const needed = metadata.blobs.filter((b) => !b.external).reduce((n, b) => n + b.size, 0);
      throw new Error(
        `no space left in ${dirname(opts.output)} while writing ${basename(opts.output)}: ${written} of about ${needed} bytes written (removed); free space or choose another -o folder, then rerun (fetched blobs stay in the cache)`,
      );
    }
    throw err;
  } finally {
    activePartials.delete(tmp);
    activePartials.delete(sidecarTmp);
    activePartials.delete(`${tmp}.sig`);
  }
}

/**
 * Temporary files of earlier runs that were killed (SIGKILL, power loss): named
 * after a process that no longer exists, they can only be garbage.
 */
async function removeStalePartials(output: string): Promise<void> {
  const prefix = `.${basename(output)}.partial-`;
  let names: string[];
  try {
    names = await readdir(dirname(output));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)/.exec(name.slice(prefix.length))?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) await rm(join(dirname(output), name), { force: true });
  }
}

async function writeSmallFile(path: string, text: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
