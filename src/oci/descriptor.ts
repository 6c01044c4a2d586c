import { isValidDigest } from '../reference/reference.js';

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

/** Checks the fields this tool relies on; other fields are kept untouched in the original bytes. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw new InvalidDocumentError(`${where}: descriptor is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw new InvalidDocumentError(`${where}: descriptor has no mediaType`);
  if (typeof d.digest !== 'string' || !isValidDigest(d.digest)) {
    throw new InvalidDocumentError(`${where}: descriptor digest ${JSON.stringify(d.digest)} is not a valid sha256/sha512 digest`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new InvalidDocumentError(`${where}: descriptor size ${JSON.stringify(d.size)} is not a non-negative integer`);
  }
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform !== undefined) out.platform = parsePlatformField(d.platform, where);
  if (d.annotations !== undefined && typeof d.annotations === 'object' && d.annotations !== null) {
    out.annotations = d.annotations as Record<string, string>;
  }
  if (Array.isArray(d.urls)) out.urls = d.urls.filter((u): u is string => typeof u === 'string');
  if (typeof d.artifactType === 'string') out.artifactType = d.artifactType;
  return out;
}

function parsePlatformField(value: unknown, where: string): Platform {
  if (typeof value !== 'object' || value === null) throw new InvalidDocumentError(`${where}: platform is not an object`);
  const p = value as Record<string, unknown>;
  if (typeof p.os !== 'string' || typeof p.architecture !== 'string') {
    throw new InvalidDocumentError(`${where}: platform lacks os or architecture`);
  }
  const out: Platform = { os: p.os, architecture: p.architecture };
  if (typeof p.variant === 'string' && p.variant !== '') out.variant = p.variant;
  if (typeof p['os.version'] === 'string') out['os.version'] = p['os.version'];
  return out;
}
