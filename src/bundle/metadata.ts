import { isValidDigest } from '../reference/reference.js';
import { BUNDLE_FORMAT, FORMAT_VERSION, MAX_METADATA_BYTES, type BlobRole, type BundleMetadata } from './format.js';

export class MetadataError extends Error {
  override name = 'MetadataError';
}

const ROLES: readonly BlobRole[] = ['layer', 'config', 'manifest', 'index'];

/**
 * Parses and checks the bundle metadata. It comes from an untrusted file, so
 * every field the tool later relies on is checked for type and range here,
 * once, and the rest of the code can trust the shape.
 */
export function parseMetadata(bytes: Buffer): BundleMetadata {
  if (bytes.length > MAX_METADATA_BYTES) throw new MetadataError(`metadata is ${bytes.length} bytes, more than the ${MAX_METADATA_BYTES}-byte limit`);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new MetadataError(`metadata is not valid JSON (${(err as Error).message})`);
  }
  const fail = (what: string): never => {
    throw new MetadataError(`metadata: ${what}`);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('not a JSON object');
  const m = doc as Record<string, unknown>;
  if (m.format !== BUNDLE_FORMAT) fail(`format is ${JSON.stringify(m.format)}, expected "${BUNDLE_FORMAT}"`);
  if (typeof m.formatVersion !== 'number' || m.formatVersion > FORMAT_VERSION) {
    fail(`format version ${JSON.stringify(m.formatVersion)} is newer than this tool understands (${FORMAT_VERSION}); upgrade airgap-bundle`);
  }
  const tool = m.tool as { name?: unknown; version?: unknown } | undefined;
  if (typeof tool !== 'object' || tool === null || typeof tool.name !== 'string' || typeof tool.version !== 'string') fail('"tool" must hold name and version');
  if (m.created !== undefined && typeof m.created !== 'string') fail('"created" is not a string');
  if (m.platforms !== null && (!Array.isArray(m.platforms) || m.platforms.some((p) => typeof p !== 'string'))) fail('"platforms" must be null or a list of strings');
  if (m.delta !== undefined) {
    const against = (m.delta as { against?: unknown } | null)?.against;
    if (!Array.isArray(against) || against.some((a) => typeof a !== 'string')) fail('"delta.against" must be a list of strings');
  }
  if (!Array.isArray(m.blobs)) fail('"blobs" is not a list');
  if (!Array.isArray(m.images)) fail('"images" is not a list');
  const known = new Set<string>();
  (m.blobs as unknown[]).forEach((b, i) => {
    const r = b as Record<string, unknown>;
    if (typeof r !== 'object' || r === null) fail(`blobs[${i}] is not an object`);
    if (typeof r.digest !== 'string' || !isValidDigest(r.digest)) fail(`blobs[${i}] has an invalid digest`);
    if (typeof r.size !== 'number' || !Number.isSafeInteger(r.size) || r.size < 0) fail(`blobs[${i}] has an invalid size`);
    if (typeof r.mediaType !== 'string') fail(`blobs[${i}] has no mediaType`);
    if (!ROLES.includes(r.role as BlobRole)) fail(`blobs[${i}] has an invalid role`);
    if (known.has(r.digest as string)) fail(`blob ${r.digest as string} is listed twice`);
    if (r.external !== undefined && typeof r.external !== 'boolean') fail(`blobs[${i}].external is not a boolean`);
    if (r.external && (r.role === 'manifest' || r.role === 'index')) fail(`blobs[${i}] is an external ${String(r.role)}; a bundle always carries its manifests`);
    if (r.mountFrom !== undefined && typeof r.mountFrom !== 'string') fail(`blobs[${i}].mountFrom is not a string`);
    if (r.volume !== undefined && (!Number.isSafeInteger(r.volume) || (r.volume as number) < 1)) fail(`blobs[${i}].volume is not a volume number`);
    if (r.parts !== undefined) checkParts(r, i, fail);
    known.add(r.digest as string);
  });
  const v = m.volumes as { index?: unknown; count?: unknown; set?: unknown } | undefined;
  if (v !== undefined) {
    if (!Number.isSafeInteger(v.count) || !Number.isSafeInteger(v.index) || (v.index as number) < 1 || (v.index as number) > (v.count as number) || typeof v.set !== 'string') {
      fail('"volumes" must hold index (1..count), count and set');
    }
    for (const b of m.blobs as Array<{ volume?: number; parts?: Array<{ volume: number }> }>) {
      for (const n of [b.volume, ...(b.parts ?? []).map((p) => p.volume)]) if (n !== undefined && n > (v.count as number)) fail(`a blob is assigned to volume ${n} of ${String(v.count)}`);
    }
  } else if ((m.blobs as Array<{ parts?: unknown }>).some((b) => b.parts !== undefined)) {
    fail('a blob is cut into parts, but the bundle is not a volume set');
  }
  (m.images as unknown[]).forEach((im, i) => {
    const r = im as Record<string, unknown>;
    if (typeof r !== 'object' || r === null) fail(`images[${i}] is not an object`);
    for (const key of ['reference', 'registry', 'repository', 'digest', 'mediaType'] as const) {
      if (typeof r[key] !== 'string') fail(`images[${i}].${key} is missing`);
    }
    if (!isValidDigest(r.digest as string)) fail(`images[${i}] has an invalid digest`);
    if (typeof r.size !== 'number' || !Number.isSafeInteger(r.size) || r.size < 0) fail(`images[${i}] has an invalid size`);
    for (const key of ['platforms', 'absent', 'blobs'] as const) if (!Array.isArray(r[key])) fail(`images[${i}].${key} is not a list`);
    if (r.tag !== undefined && typeof r.tag !== 'string') fail(`images[${i}].tag is not a string`);
    if (typeof r.bytes !== 'number') fail(`images[${i}].bytes is not a number`);
    (r.platforms as unknown[]).forEach((p, j) => {
      const q = p as { platform?: unknown; digest?: unknown; mediaType?: unknown; carried?: unknown } | null;
      if (typeof q !== 'object' || q === null || typeof q.platform !== 'string' || typeof q.digest !== 'string' || typeof q.mediaType !== 'string' || typeof q.carried !== 'boolean') {
        fail(`images[${i}].platforms[${j}] must hold platform, digest, mediaType and carried`);
      }
    });
    for (const d of r.blobs as unknown[]) {
      if (typeof d !== 'string' || !known.has(d)) fail(`images[${i}] (${String(r.reference)}) needs blob ${String(d)}, which the bundle does not list`);
    }
    for (const d of r.absent as unknown[]) if (typeof d !== 'string' || !isValidDigest(d)) fail(`images[${i}].absent holds an invalid digest`);
    if (!known.has(r.digest as string)) fail(`images[${i}] (${String(r.reference)}) has a top manifest the bundle does not list`);
    if (r.artifact !== undefined) {
      const a = r.artifact as { kind?: unknown; subject?: unknown; of?: unknown };
      if (typeof a.kind !== 'string' || typeof a.subject !== 'string' || !isValidDigest(a.subject) || typeof a.of !== 'string') fail(`images[${i}].artifact must hold kind, subject digest and of`);
    }
  });
  return doc as BundleMetadata;
}

/** A blob cut across volumes: parts in order, sizes adding up, each with its own sha256. */
function checkParts(r: Record<string, unknown>, i: number, fail: (what: string) => never): void {
  const parts = r.parts;
  if (!Array.isArray(parts) || parts.length === 0) fail(`blobs[${i}].parts is not a list of parts`);
  if (r.external || (r.role !== 'layer' && r.role !== 'config')) fail(`blobs[${i}] has parts but is not a carried config or layer`);
  if (r.volume !== undefined) fail(`blobs[${i}] has both a volume and parts`);
  let total = 0;
  (parts as unknown[]).forEach((p, j) => {
    const q = p as { digest?: unknown; size?: unknown; volume?: unknown } | null;
    if (typeof q !== 'object' || q === null || typeof q.digest !== 'string' || !q.digest.startsWith('sha256:') || !isValidDigest(q.digest)) fail(`blobs[${i}].parts[${j}] has an invalid digest`);
    if (typeof q!.size !== 'number' || !Number.isSafeInteger(q!.size) || q!.size <= 0) fail(`blobs[${i}].parts[${j}] has an invalid size`);
    if (!Number.isSafeInteger(q!.volume) || (q!.volume as number) < 1) fail(`blobs[${i}].parts[${j}].volume is not a volume number`);
    total += q!.size as number;
  });
  if (total !== r.size) fail(`the parts of blobs[${i}] add up to ${total} bytes, not ${String(r.size)}`);
}
