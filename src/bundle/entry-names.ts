import { isValidDigest } from '../reference/reference.js';
import { INDEX_NAME, METADATA_NAME, OCI_LAYOUT_NAME, SIGNATURE_NAME } from './format.js';

export type EntryName =
  | { kind: 'metadata' | 'signature' | 'oci-layout' | 'index' }
  | { kind: 'directory' }
  | { kind: 'blob'; digest: string };

/**
 * Classifies a tar entry name against the bundle layout, or explains why it is
 * refused. Only the exact names of an OCI layout are accepted: anything else
 * (absolute paths, `..`, stray files, malformed digests) is hostile or broken.
 */
export function classifyEntryName(name: string): EntryName | { kind: 'invalid'; reason: string } {
  if (name.startsWith('/')) return { kind: 'invalid', reason: 'absolute path' };
  if (name.split('/').includes('..')) return { kind: 'invalid', reason: 'path with ".."' };
  const path = name.replace(/^\.\//, '');
  if (path === METADATA_NAME) return { kind: 'metadata' };
  if (path === SIGNATURE_NAME) return { kind: 'signature' };
  if (path === OCI_LAYOUT_NAME) return { kind: 'oci-layout' };
  if (path === INDEX_NAME) return { kind: 'index' };
  if (path === 'blobs/' || path === 'blobs' || /^blobs\/sha256\/?$/.test(path)) return { kind: 'directory' };
  const m = /^blobs\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) return { kind: 'invalid', reason: 'not part of an OCI image layout' };
  const digest = `${m[1]}:${m[2]}`;
  if (m[1] !== 'sha256') return { kind: 'invalid', reason: `unsupported digest algorithm "${m[1]}"` };
  if (!isValidDigest(digest))
    return { kind: 'invalid', reason: `"${m[2]}" is not lowercase hex of the right length for ${m[1]}` };
  return { kind: 'blob', digest };
}
