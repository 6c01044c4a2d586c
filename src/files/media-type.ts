import { extname } from 'node:path';

/** What a carried file's layer is when its kind is not known: plain bytes. */
export const OCTET_STREAM = 'application/octet-stream';

/**
 * Media types of the file kinds a cluster's air gap carries, by extension
 * (IANA registrations, or the type their own tools use). Anything else is
 * `application/octet-stream`: a kernel or a `talosctl` binary has no extension.
 */
const BY_EXTENSION: Record<string, string> = {
  '.iso': 'application/x-iso9660-image',
  '.zst': 'application/zstd',
  '.xz': 'application/x-xz',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.zip': 'application/zip',
  '.json': 'application/json',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.txt': 'text/plain',
};

/** The media type a file of this name is carried with. */
export function fileMediaType(name: string): string {
  return BY_EXTENSION[extname(name).toLowerCase()] ?? OCTET_STREAM;
}
