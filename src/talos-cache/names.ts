import { BundleFormatError } from '../bundle/reader.js';
import { printable } from '../util/text.js';

/**
 * File names of a Talos image cache, as Talos's own cache builder writes them
 * and its registry server looks them up: `blob/sha256-<hex>` for configs and
 * layers, `manifests/<registry>/<repository>/reference/<tag>` and
 * `manifests/<registry>/<repository>/digest/sha256-<hex>` for manifests.
 */
export const BLOB_DIR = 'blob';
export const MANIFESTS_DIR = 'manifests';

/** `sha256:<hex>` → `sha256-<hex>`: a colon is not allowed on FAT file systems. */
export function digestFileName(digest: string): string {
  return digest.replace(':', '-');
}

/** One safe path component: what the reference grammar already allows, checked again before it names a file. */
const COMPONENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * The registry's folder: `host:port` becomes `host_port_` (FAT again), Docker
 * Hub's legacy names become `docker.io`, the name Talos asks for.
 */
export function registryDir(registry: string): string {
  const hub = registry === 'index.docker.io' || registry === 'registry-1.docker.io' ? 'docker.io' : registry;
  const colon = hub.lastIndexOf(':');
  const dir = colon > 0 ? `${hub.slice(0, colon)}_${hub.slice(colon + 1)}_` : hub;
  if (!COMPONENT.test(dir))
    throw new BundleFormatError(
      `registry "${printable(registry, 80)}" cannot be named in an image cache (only host or host:port)`,
    );
  return dir;
}

/** `manifests/<registry>/<repository>`, every component checked so no name can leave the tree. */
export function repositoryDir(registry: string, repository: string): string {
  const parts = repository.split('/');
  if (parts.some((p) => !COMPONENT.test(p)))
    throw new BundleFormatError(`repository "${printable(repository, 120)}" cannot be named in an image cache`);
  return `${MANIFESTS_DIR}/${registryDir(registry)}/${repository}`;
}

export function referencePath(repoDir: string, tag: string): string {
  if (!COMPONENT.test(tag)) throw new BundleFormatError(`tag "${printable(tag, 130)}" cannot name a file`);
  return `${repoDir}/reference/${tag}`;
}

export function digestPath(repoDir: string, digest: string): string {
  return `${repoDir}/digest/${digestFileName(digest)}`;
}

export function blobPath(digest: string): string {
  return `${BLOB_DIR}/${digestFileName(digest)}`;
}
