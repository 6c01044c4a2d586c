import { basename } from 'node:path';
import { isPlainFileName } from '../bundle/carried.js';
import { hasControlCharacters, printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';

/**
 * One file to carry, as `--file` or a spec's `files:` entry asks for it:
 * where it comes from, the digest it must have, and the plain name it is
 * carried, served and written out under.
 */
export interface FileRequest {
  source: FileSource;
  /** `sha256:<hex>` the bytes must have; required for a URL unless unpinned files are allowed. */
  sha256?: string;
  name: string;
  /** Permission bits to restore; by default a path's own, 0o644 for a URL. */
  mode?: number;
  /** Where the request was made (`--file`, `spec.yaml files[2]`), for messages. */
  origin: string;
  /**
   * A URL the tool itself names (the Image Factory's boot media, which publishes
   * no checksum): carried unpinned without --allow-unpinned, its digest recorded.
   */
  namedByTool?: boolean;
}

export type FileSource = { kind: 'url'; url: string } | { kind: 'path'; path: string };

/** A `--file` or `files:` entry that cannot be carried: exit 2, nothing fetched. */
export class FileRequestError extends UserInputError {
  override name = 'FileRequestError';
}

const SHA256_HEX = /^[a-f0-9]{64}$/;
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Parses `URL|PATH[#sha256=HEX][@NAME]`. The name is what follows the last `@`
 * after the last `/` (so `https://user@host/x` keeps its user); a source whose
 * own file name holds an `@` is written with an explicit `@NAME`. Only
 * `#sha256=` may follow the source: any other fragment is a typo to report.
 */
export function parseFileArgument(text: string, origin = '--file'): FileRequest {
  let rest = text;
  let name: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at > rest.lastIndexOf('/') && at > rest.lastIndexOf('#sha256=')) {
    name = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let sha256: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    const fragment = rest.slice(hash + 1);
    const hex = /^sha256=(.*)$/.exec(fragment)?.[1];
    if (hex === undefined || !SHA256_HEX.test(hex.toLowerCase()))
      throw new FileRequestError(
        `${origin} "${printable(text)}": after "#" only sha256=HEX (64 hex digits) may follow the source`,
      );
    sha256 = `sha256:${hex.toLowerCase()}`;
    rest = rest.slice(0, hash);
  }
  return fileRequest({ source: rest, ...(sha256 ? { sha256 } : {}), ...(name !== undefined ? { name } : {}) }, origin);
}

/**
 * A request from its parts (a spec entry, or a parsed `--file`): the source
 * classified, the name defaulted from it and checked, the digest and mode
 * checked.
 */
export function fileRequest(
  parts: { source: string; sha256?: string; name?: string; mode?: number },
  origin: string,
): FileRequest {
  const source = fileSource(parts.source, origin);
  const name = parts.name ?? defaultName(source, origin);
  if (!isPlainFileName(name))
    throw new FileRequestError(
      `${origin}: "${printable(name)}" is not a plain file name (no "/" or "\\", not "." or "..", no control characters, at most 255 characters); name it with @NAME`,
    );
  if (parts.sha256 !== undefined && !/^sha256:[a-f0-9]{64}$/.test(parts.sha256))
    throw new FileRequestError(`${origin}: sha256 must be 64 lowercase hex digits (with or without "sha256:")`);
  if (parts.mode !== undefined && !(Number.isInteger(parts.mode) && parts.mode >= 0 && parts.mode <= 0o777))
    throw new FileRequestError(`${origin}: mode must be permission bits from 0 to 0777`);
  return {
    source,
    ...(parts.sha256 !== undefined ? { sha256: parts.sha256 } : {}),
    name,
    ...(parts.mode !== undefined ? { mode: parts.mode } : {}),
    origin,
  };
}

/** Longest source the bundle's metadata records (its reader's bound). */
const MAX_SOURCE_LENGTH = 2048;

function fileSource(text: string, origin: string): FileSource {
  if (text === '') throw new FileRequestError(`${origin}: no URL or path given`);
  if (text.length > MAX_SOURCE_LENGTH || hasControlCharacters(text))
    throw new FileRequestError(
      `${origin}: the source "${printable(text)}" is longer than ${MAX_SOURCE_LENGTH} characters or holds control characters`,
    );
  if (!URL_SCHEME.test(text)) return { kind: 'path', path: text };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new FileRequestError(`${origin}: "${printable(text)}" is not a URL that parses`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new FileRequestError(
      `${origin}: ${printable(url.protocol, 20)} URLs are not fetched; give an https:// URL or a local path`,
    );
  return { kind: 'url', url: url.href };
}

/** The last segment of a URL's path (percent-decoded), or a path's base name. */
function defaultName(source: FileSource, origin: string): string {
  if (source.kind === 'path') return basename(source.path);
  const segment = new URL(source.url).pathname.split('/').pop() ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    decoded = '';
  }
  if (decoded === '') throw new FileRequestError(`${origin}: the URL ends in no file name; name the file with @NAME`);
  return decoded;
}

/**
 * Checks that no two requests carry the same name, nor names that would
 * become the same repository and tag: the second would silently replace the first.
 */
export function requireDistinct(requests: FileRequest[], key: (r: FileRequest) => string): void {
  const seen = new Map<string, FileRequest>();
  for (const r of requests) {
    const k = key(r);
    const other = seen.get(k);
    if (other)
      throw new FileRequestError(
        other.name === r.name
          ? `${r.origin}: the name "${printable(r.name)}" is already carried (${other.origin}); give one of them another @NAME`
          : `${r.origin}: "${printable(r.name)}" and "${printable(other.name)}" (${other.origin}) would be carried under the same repository and tag; rename one with @NAME`,
      );
    seen.set(k, r);
  }
}
