import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { BuiltArtifact } from '../oci/artifact.js';
import { redactUrl } from '../registry/errors.js';
import { printable } from '../util/text.js';
import { fileArtifact } from './artifact.js';
import { stageUrl, PinMismatchError, type DownloadOptions } from './download.js';
import { fileRepository, fileTag } from './names.js';
import { FileRequestError, requireDistinct, type FileRequest } from './request.js';
import { hashFile, MAX_FILE_BYTES, type StagedFile } from './staged.js';

export interface PrepareOptions extends DownloadOptions {
  /** Repository prefix under CARRIED_REGISTRY (`files`), already checked. */
  prefix: string;
  /** Carry URL files that have no sha256 pin (their digest is whatever arrives). */
  allowUnpinned: boolean;
  /** Where URL files are fetched to before the bundle is written (resumable). */
  staging: string;
  /** One line per file, once its bytes are known. */
  onFile?: (file: { name: string; digest: string; size: number; fetched: boolean }) => void;
}

/** The default mode of a file fetched from a URL (a path file keeps its own). */
const URL_FILE_MODE = 0o644;

/**
 * The artifacts of every requested file, in the order asked: checked first as
 * a whole (names distinct, URL files pinned) so that a mistake in the last
 * `--file` fetches nothing; then each URL file staged and each path file
 * hashed where it is.
 */
export async function prepareFiles(requests: FileRequest[], opts: PrepareOptions): Promise<BuiltArtifact[]> {
  checkFileRequests(requests, opts);
  const out: BuiltArtifact[] = [];
  for (const r of requests) out.push(await prepareOne(r, opts));
  return out;
}

/**
 * What can be refused before any byte is read: two files under one name (or
 * one repository and tag), a URL file without a pin unless unpinned files
 * are allowed. `export --dry-run` stops here.
 */
export function checkFileRequests(
  requests: FileRequest[],
  opts: Pick<PrepareOptions, 'prefix' | 'allowUnpinned'>,
): void {
  requireDistinct(requests, (r) => r.name);
  requireDistinct(requests, (r) => `${fileRepository(opts.prefix, r.name)}:${fileTag(r.name)}`);
  if (opts.allowUnpinned) return;
  const unpinned = requests.find((r) => r.source.kind === 'url' && r.sha256 === undefined && !r.namedByTool);
  if (unpinned?.source.kind === 'url')
    throw new FileRequestError(
      `${unpinned.origin}: ${printable(redactUrl(unpinned.source.url), 160)} is not pinned: add #sha256=HEX (sha256sum of the file), or pass --allow-unpinned to carry whatever the server sends`,
    );
}

async function prepareOne(r: FileRequest, opts: PrepareOptions): Promise<BuiltArtifact> {
  if (r.source.kind === 'url') {
    const staged = await stageUrl(
      { url: r.source.url, name: r.name, ...(r.sha256 ? { sha256: r.sha256 } : {}) },
      opts.staging,
      opts,
    );
    opts.onFile?.({ name: r.name, digest: staged.digest, size: staged.size, fetched: true });
    return fileArtifact(
      { name: r.name, source: redactUrl(r.source.url), mode: r.mode ?? URL_FILE_MODE },
      staged,
      opts.prefix,
    );
  }
  const { staged, mode } = await hashedInPlace(r, r.source.path);
  opts.onFile?.({ name: r.name, digest: staged.digest, size: staged.size, fetched: false });
  return fileArtifact({ name: r.name, source: r.source.path, mode: r.mode ?? mode }, staged, opts.prefix);
}

/** A path file hashed where it is, checked against its pin; its permission bits are kept. */
async function hashedInPlace(r: FileRequest, path: string): Promise<{ staged: StagedFile; mode: number }> {
  const full = resolve(path);
  const info = await stat(full).catch(() => undefined);
  const hashed = info?.isFile() ? await hashFile(full) : undefined;
  if (!info || !hashed) throw new FileRequestError(`${r.origin}: ${printable(path)} is not a readable regular file`);
  if (hashed.size > MAX_FILE_BYTES)
    throw new FileRequestError(
      `${r.origin}: ${printable(path)} is larger than the ${MAX_FILE_BYTES} bytes one carried file may have`,
    );
  if (r.sha256 !== undefined && hashed.digest !== r.sha256)
    throw new PinMismatchError(`${r.origin}: ${printable(path)} has ${hashed.digest}, not the pinned ${r.sha256}`);
  return { staged: { path: full, ...hashed }, mode: info.mode & 0o777 };
}
