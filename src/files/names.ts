/**
 * Where a carried file lives as an OCI artifact: its plain name turned into
 * a repository path component and a tag. The distribution grammar allows far
 * fewer characters than a file name: what does not fit becomes a separator,
 * so `Talos Linux v1.14.iso` is `files/talos-linux-v1.14.iso:Talos_Linux_v1.14.iso`.
 */

/** Longest repository component made from a name: room is left for the prefix. */
const MAX_COMPONENT = 128;
const MAX_TAG = 128;

/**
 * `name` as one repository component (`[a-z0-9]+` runs joined by `.`, `_`,
 * `__` or `-`): lowercased, anything else a `-`, runs of mixed separators
 * folded into one `-`, none at either end; `file` when nothing is left.
 */
export function repositoryComponent(name: string): string {
  const mapped = name.toLowerCase().replace(/[^a-z0-9._-]/g, '-');
  const folded = mapped.replace(/[._-]{2,}/g, (run) => (/^-+$/.test(run) || run === '__' ? run : '-'));
  const trimmed = trimSeparators(folded.slice(0, MAX_COMPONENT));
  return trimmed === '' ? 'file' : trimmed;
}

/**
 * `name` as a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`): anything else a `_`,
 * a leading `.` or `-` prefixed with `_`, cut to 128 characters.
 */
export function fileTag(name: string): string {
  const mapped = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  const started = /^[.-]/.test(mapped) ? `_${mapped}` : mapped;
  return started.slice(0, MAX_TAG);
}

/** `prefix/component`: the repository a file is carried in under CARRIED_REGISTRY. */
export function fileRepository(prefix: string, name: string): string {
  return prefix === '' ? repositoryComponent(name) : `${prefix}/${repositoryComponent(name)}`;
}

function trimSeparators(s: string): string {
  return s.replace(/^[._-]+|[._-]+$/g, '');
}
