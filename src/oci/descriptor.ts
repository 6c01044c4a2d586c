import { isValidDigest } from '../reference/reference.js';
import { hasControlCharacters, printable } from '../util/text.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
  artifactType?: string;
}

export class InvalidDocumentError extends Error {
  override name = 'InvalidDocumentError';
}

/** RFC 6838 `type/subtype` (with `+suffix` and parameters-free), the only media types a descriptor may carry. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
/** One component of a platform (`linux`, `arm64`, `v8`, `10.0.17763.5576`). */
const PLATFORM_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_ANNOTATIONS = 256;
const MAX_ANNOTATION_KEY = 256;
const MAX_ANNOTATION_VALUE = 64 * 1024;
const MAX_URLS = 16;

export function isValidMediaType(s: unknown): s is string {
  return typeof s === 'string' && MEDIA_TYPE.test(s);
}

export function isValidPlatformPart(s: unknown): s is string {
  return typeof s === 'string' && PLATFORM_PART.test(s);
}

/** Annotation values may hold text (a description with line breaks), never terminal controls. */
function isSafeAnnotationValue(v: string): boolean {
  return v.length <= MAX_ANNOTATION_VALUE && !hasControlCharacters(v.replace(/[\n\r\t]/g, ' '));
}

function parseAnnotations(value: unknown, where: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidDocumentError(`${where}: annotations is not an object`);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_ANNOTATIONS)
    throw new InvalidDocumentError(`${where}: ${entries.length} annotations, more than ${MAX_ANNOTATIONS}`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > MAX_ANNOTATION_KEY || hasControlCharacters(k))
      throw new InvalidDocumentError(`${where}: annotation key "${printable(k, 60)}" is not valid`);
    if (typeof v !== 'string' || !isSafeAnnotationValue(v))
      throw new InvalidDocumentError(`${where}: annotation "${printable(k, 60)}" has a value that is not plain text`);
    out[k] = v;
  }
  return out;
}

/** Checks the fields this tool relies on; other fields are kept untouched in the original bytes. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null)
    throw new InvalidDocumentError(`${where}: descriptor is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '')
    throw new InvalidDocumentError(`${where}: descriptor has no mediaType`);
  if (!isValidMediaType(d.mediaType))
    throw new InvalidDocumentError(`${where}: media type "${printable(d.mediaType, 80)}" is not a valid type/subtype`);
  if (typeof d.digest !== 'string' || !isValidDigest(d.digest)) {
    throw new InvalidDocumentError(
      `${where}: descriptor digest "${printable(String(d.digest), 80)}" is not a valid sha256 digest`,
    );
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new InvalidDocumentError(
      `${where}: descriptor size "${printable(String(d.size), 40)}" is not a non-negative integer`,
    );
  }
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform !== undefined) out.platform = parsePlatformField(d.platform, where);
  if (d.annotations !== undefined && d.annotations !== null) out.annotations = parseAnnotations(d.annotations, where);
  if (Array.isArray(d.urls)) {
    if (d.urls.length > MAX_URLS)
      throw new InvalidDocumentError(`${where}: ${d.urls.length} urls, more than ${MAX_URLS}`);
    out.urls = d.urls.filter((u): u is string => typeof u === 'string' && !hasControlCharacters(u));
  }
  if (d.artifactType !== undefined) {
    if (!isValidMediaType(d.artifactType))
      throw new InvalidDocumentError(
        `${where}: artifactType "${printable(String(d.artifactType), 80)}" is not a valid type/subtype`,
      );
    out.artifactType = d.artifactType;
  }
  return out;
}

function parsePlatformField(value: unknown, where: string): Platform {
  if (typeof value !== 'object' || value === null)
    throw new InvalidDocumentError(`${where}: platform is not an object`);
  const p = value as Record<string, unknown>;
  if (typeof p.os !== 'string' || typeof p.architecture !== 'string') {
    throw new InvalidDocumentError(`${where}: platform lacks os or architecture`);
  }
  for (const key of ['os', 'architecture', 'variant', 'os.version'] as const) {
    const v = p[key];
    if (v !== undefined && v !== '' && !isValidPlatformPart(v))
      throw new InvalidDocumentError(`${where}: platform ${key} "${printable(String(v), 80)}" is not valid`);
  }
  const out: Platform = { os: p.os, architecture: p.architecture };
  if (typeof p.variant === 'string' && p.variant !== '') out.variant = p.variant;
  if (typeof p['os.version'] === 'string' && p['os.version'] !== '') out['os.version'] = p['os.version'];
  return out;
}
