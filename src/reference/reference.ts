/**
 * Image references, normalised the way Docker and containerd read them.
 *
 * `busybox` → `docker.io/library/busybox:latest`; a first path component with a
 * dot, a colon or equal to `localhost` is a registry host; anything else belongs
 * to Docker Hub. The grammar follows the distribution reference grammar so that
 * a ref accepted here is accepted by every registry.
 */
import { UserInputError } from '../util/user-input.js';

export const DOCKER_HUB = 'docker.io';
/** Docker Hub's API is not served at docker.io itself. */
export const DOCKER_HUB_API = 'registry-1.docker.io';
const LEGACY_HUB_NAMES = new Set(['index.docker.io', 'registry-1.docker.io']);

export interface Reference {
  /** Registry host, with port when given (`127.0.0.1:5000`), normalised (`docker.io`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/busybox`). */
  readonly repository: string;
  readonly tag?: string;
  /** `sha256:<hex>`; when both tag and digest are given the digest wins. */
  readonly digest?: string;
}

export class ReferenceError extends UserInputError {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`invalid image reference "${input}": ${reason}`);
    this.name = 'ReferenceError';
  }
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_NAME = 255;

/** A tag: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 128. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** A repository path: lowercase components joined by `/` (no `..`, no empty component), at most 255 characters. */
export function isValidRepositoryPath(path: string): boolean {
  return path.length <= MAX_NAME && path.split('/').every((c) => COMPONENT.test(c));
}

/**
 * `sha256:<64 lowercase hex>`: the only digests this tool reads or writes.
 * The OCI spec also registers sha512, but registries, containerd and every
 * image in use speak sha256; rather than carry a second algorithm that no
 * upstream produces and no test could exercise end to end, sha512 is refused
 * everywhere with one clear message (see `unsupportedDigest`).
 */
export function isValidDigest(digest: string): boolean {
  return SHA256_DIGEST.test(digest);
}

/** Why a well-formed digest of another algorithm is refused, or undefined for anything else. */
export function unsupportedDigest(digest: string): string | undefined {
  const algorithm = /^([a-z0-9]+)[+._-]?[a-z0-9]*:[a-zA-Z0-9=_-]+$/.exec(digest)?.[1];
  if (algorithm === undefined || algorithm === 'sha256') return undefined;
  return `${algorithm} digests are not supported (registries and this tool use sha256); pin the image by its sha256 digest`;
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component.startsWith('[');
}

export function parseReference(input: string): Reference {
  const raw = input.trim();
  if (raw === '') throw new ReferenceError(input, 'empty');
  if (/\s/.test(raw)) throw new ReferenceError(input, 'contains whitespace');
  if (raw.includes('://')) throw new ReferenceError(input, 'a reference has no scheme; drop "http://" or "https://"');

  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isValidDigest(digest))
      throw new ReferenceError(
        input,
        unsupportedDigest(digest) ?? `digest "${digest}" is not sha256:<64 lowercase hex>`,
      );
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag))
      throw new ReferenceError(input, `tag "${tag}" is not valid (letters, digits, "_", "." and "-", at most 128)`);
  }

  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && looksLikeHost(parts[0]!)) {
    const host = parts.shift()!;
    if (!HOST.test(host) && !IPV6_HOST.test(host))
      throw new ReferenceError(input, `registry host "${host}" is not valid`);
    registry = LEGACY_HUB_NAMES.has(host) ? DOCKER_HUB : host;
  }
  if (parts.length === 0 || parts.some((p) => p === '')) throw new ReferenceError(input, 'empty path component');
  for (const p of parts) {
    if (!COMPONENT.test(p)) {
      const hint = p !== p.toLowerCase() ? ' (repository names must be lowercase)' : '';
      throw new ReferenceError(input, `path component "${p}" is not valid${hint}`);
    }
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > MAX_NAME)
    throw new ReferenceError(input, `repository name longer than ${MAX_NAME} characters`);

  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** `registry/repository` */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The full normalised form: `docker.io/library/busybox:1.36`, `host/repo:tag@sha256:…`. */
export function formatReference(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** What to ask the registry for: the digest when pinned, the tag otherwise. */
export function manifestSelector(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}
