/**
 * Where a bundle's images live in the isolated registry, and where a node is
 * sent to find them.
 *
 * `import` writes each image to `targetRepository`, `serve` answers under the
 * same name, and every mirror format (Talos, containerd, k3s) sends a node
 * asking for `REGISTRY/REPO` to `mirrorPath(REGISTRY)/REPO`. These rules live
 * here only: if two of them disagreed, nodes would ask for repositories that
 * were never written.
 */
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';
import { isValidRepositoryPath, parseReference } from './reference.js';

/**
 * How bundle references become repositories of the isolated registry.
 * - default: the registry host is dropped (`ghcr.io/siderolabs/installer` →
 *   `siderolabs/installer`), which is what a Talos or containerd `'*'` mirror requests;
 * - keepRegistryHost: the host stays as the first component (`ghcr.io/siderolabs/installer`),
 *   for per-registry mirrors with an overridden path; `:` of a port becomes `_`;
 * - repoPrefix: everything goes under `PREFIX/` (a Harbor project).
 */
export interface RepositoryMapping {
  readonly keepRegistryHost: boolean;
  readonly repoPrefix?: string;
}

/** The `--repo-prefix` given is no repository path: exit 2, nothing done. */
export class MappingError extends UserInputError {
  override name = 'MappingError';
}

/**
 * The prefix without leading or trailing slashes (`/airgap/team/` → `airgap/team`):
 * they are how a path is often typed, and mean nothing inside a repository name.
 */
export function normalisePrefix(prefix: string): string {
  return prefix.replace(/^\/+|\/+$/g, '');
}

/** Why `prefix` cannot go in front of repository names, or undefined when it can. */
function prefixProblem(prefix: string): string | undefined {
  if (isValidRepositoryPath(normalisePrefix(prefix))) return undefined;
  return `--repo-prefix "${printable(prefix)}" is not a valid repository path (lowercase letters, digits, ".", "_", "-", "/")`;
}

/**
 * Why `mapping` cannot name repositories, or undefined when it can: for
 * mappings made by hand rather than by `repositoryMapping`.
 */
export function mappingProblem(mapping: RepositoryMapping): string | undefined {
  return mapping.repoPrefix !== undefined ? prefixProblem(mapping.repoPrefix) : undefined;
}

/**
 * A checked mapping, its prefix normalised. An empty prefix is no prefix, as
 * an empty option value always was.
 */
export function repositoryMapping(keepRegistryHost: boolean, repoPrefix?: string): RepositoryMapping {
  if (repoPrefix === undefined || repoPrefix === '') return { keepRegistryHost };
  const problem = prefixProblem(repoPrefix);
  if (problem !== undefined) throw new MappingError(problem);
  return { keepRegistryHost, repoPrefix: normalisePrefix(repoPrefix) };
}

/**
 * A registry host as one repository path component: a `:` cannot be in a
 * repository name, so the port's becomes `_` (`127.0.0.1:5000` → `127.0.0.1_5000`).
 */
export function hostPathSegment(registry: string): string {
  return registry.replace(/:/g, '_');
}

/**
 * The path under which the images of `registry` live in the isolated registry,
 * `''` for its root: the prefix, then, with the host kept, the host segment.
 * A mirror for `registry` points a node there, so that `REGISTRY/REPO` is asked
 * as `mirrorPath/REPO`. The `'*'` mirror stands for every registry and so never
 * carries a host.
 */
export function mirrorPath(registry: string, mapping: RepositoryMapping): string {
  const prefix = mapping.repoPrefix ? normalisePrefix(mapping.repoPrefix) : '';
  const host = mapping.keepRegistryHost && registry !== '*' ? hostPathSegment(registry) : '';
  return [prefix, host].filter((part) => part !== '').join('/');
}

/**
 * The registry of the charts and files a bundle carries. They have no upstream
 * registry: export records them under this name, which can never resolve
 * (`.invalid` is reserved by RFC 2606), so that every consumer that handles
 * images handles them too, and none mistakes one for an image a node pulls
 * through a mirror. Their repositories (`charts/NAME`, `files/NAME`) are
 * already what Helm or oras asks for: the host is never kept, a prefix applies.
 */
export const CARRIED_REGISTRY = 'bundle.invalid';

/** The repository an image is written to (`import`) and answered from (`serve`). */
export function targetRepository(
  image: { readonly registry: string; readonly repository: string },
  mapping: RepositoryMapping,
): string {
  const path = mirrorPath(image.registry === CARRIED_REGISTRY ? '*' : image.registry, mapping);
  return path === '' ? image.repository : `${path}/${image.repository}`;
}

/** A DNS name (at most 253 characters) and a port. */
const MAX_HOST_LENGTH = 253 + ':65535'.length;

/**
 * Whether `name` is a registry host as a normalised reference names it
 * (`ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`, `localhost`), by the reference
 * grammar itself. Registry names become folder names, TOML and YAML keys and
 * URL path parts, and they come from the bundle: nothing else may pass.
 */
export function isRegistryHost(name: string): boolean {
  if (name.length === 0 || name.length > MAX_HOST_LENGTH) return false;
  try {
    // A host is what parseReference keeps as the registry of `HOST/x`, unchanged.
    return parseReference(`${name}/x`).registry === name;
  } catch {
    return false;
  }
}
