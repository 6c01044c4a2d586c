import type { ImageRecord } from '../bundle/format.js';
import { isValidDigest } from '../reference/reference.js';
import { parseBoundedJson } from '../util/json.js';
import { isMediaType } from './routes.js';

/** A descriptor of the referrers API's answer. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Annotations copied into a descriptor: bounded, strings only, or left out. */
const MAX_ANNOTATIONS = 64;
const MAX_ANNOTATION_BYTES = 16 * 1024;

type Fields = Record<string, unknown>;

function object(v: unknown): Fields | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Fields) : undefined;
}

function annotationsOf(v: unknown): Record<string, string> | undefined {
  const o = object(v);
  if (!o) return undefined;
  const entries = Object.entries(o);
  if (entries.length === 0 || entries.length > MAX_ANNOTATIONS) return undefined;
  if (!entries.every(([, s]) => typeof s === 'string')) return undefined;
  const size = entries.reduce((n, [k, s]) => n + k.length + (s as string).length, 0);
  return size <= MAX_ANNOTATION_BYTES ? Object.fromEntries(entries as Array<[string, string]>) : undefined;
}

/** The artifact type a referrer declares: its own field, else its config's media type (OCI 1.1). */
function artifactTypeOf(m: Fields): string | undefined {
  const own = m.artifactType;
  if (typeof own === 'string' && isMediaType(own)) return own;
  const config = object(m.config)?.mediaType;
  return typeof config === 'string' && isMediaType(config) ? config : undefined;
}

/**
 * The descriptor of a carried referrer manifest, when it really names
 * `subject` as its subject; the manifest bytes are the checked bundle bytes.
 */
export function referrerDescriptor(
  record: ImageRecord,
  bytes: Buffer,
  subject: string,
): ReferrerDescriptor | undefined {
  let m: Fields | undefined;
  try {
    m = object(parseBoundedJson(bytes));
  } catch {
    return undefined;
  }
  if (!m || object(m.subject)?.digest !== subject) return undefined;
  const artifactType = artifactTypeOf(m);
  const annotations = annotationsOf(m.annotations);
  return {
    mediaType: record.mediaType,
    digest: record.digest,
    size: record.size,
    ...(artifactType ? { artifactType } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

/**
 * The entries of a referrers index kept under the tag schema (`sha256-<hex>`),
 * for registries without the API: each already a descriptor of a referrer.
 */
export function tagSchemaDescriptors(bytes: Buffer): ReferrerDescriptor[] {
  let index: Fields | undefined;
  try {
    index = object(parseBoundedJson(bytes));
  } catch {
    return [];
  }
  const manifests = Array.isArray(index?.manifests) ? index.manifests.slice(0, 1000) : [];
  return manifests.flatMap((e): ReferrerDescriptor[] => {
    const d = object(e);
    if (!d || typeof d.digest !== 'string' || !isValidDigest(d.digest)) return [];
    if (typeof d.mediaType !== 'string' || !isMediaType(d.mediaType)) return [];
    if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) return [];
    const artifactType = typeof d.artifactType === 'string' && isMediaType(d.artifactType) ? d.artifactType : undefined;
    const annotations = annotationsOf(d.annotations);
    return [
      {
        mediaType: d.mediaType,
        digest: d.digest,
        size: d.size,
        ...(artifactType ? { artifactType } : {}),
        ...(annotations ? { annotations } : {}),
      },
    ];
  });
}
