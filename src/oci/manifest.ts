import { InvalidDocumentError, parseDescriptor, type Descriptor } from './descriptor.js';
import { isImageManifestType, isIndexType, isSchema1Type, MediaType } from './media-types.js';

/** Manifests larger than this are refused: Distribution itself caps them at 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'image'; mediaType: string; config: Descriptor; layers: Descriptor[]; subject?: Descriptor };

export class UnsupportedManifestError extends Error {
  override name = 'UnsupportedManifestError';
}

/**
 * Decides the media type from the transport's type and the document's own
 * `mediaType` field. OCI allows the field to be absent, so the transport type
 * (Content-Type, or the parent descriptor) is the fallback.
 */
export function parseManifest(bytes: Uint8Array, declaredType: string | undefined, where: string): ParsedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new InvalidDocumentError(`${where}: manifest of ${bytes.byteLength} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`);
  }
  let doc: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    doc = parsed as Record<string, unknown>;
  } catch (err) {
    throw new InvalidDocumentError(`${where}: manifest is not valid JSON (${(err as Error).message})`);
  }
  const own = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  let mediaType = own ?? declaredType;
  if (doc.schemaVersion === 1 || isSchema1Type(mediaType) || isSchema1Type(declaredType)) {
    throw new UnsupportedManifestError(
      `${where}: Docker schema 1 manifests are not supported (deprecated, no content digests); rebuild or re-push the image with a current builder`,
    );
  }
  // Without any type, the shape tells: OCI permits omitting mediaType in both documents.
  if (mediaType === undefined || (!isIndexType(mediaType) && !isImageManifestType(mediaType))) {
    if (Array.isArray(doc.manifests)) mediaType = mediaType && isIndexType(mediaType) ? mediaType : MediaType.ociIndex;
    else if (doc.config !== undefined) mediaType = MediaType.ociManifest;
    else throw new UnsupportedManifestError(`${where}: unsupported manifest media type ${JSON.stringify(mediaType ?? null)}`);
  }

  if (isIndexType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new InvalidDocumentError(`${where}: index has no "manifests" array`);
    const manifests = doc.manifests.map((m, i) => parseDescriptor(m, `${where} manifests[${i}]`));
    return { kind: 'index', mediaType, manifests };
  }
  const config = parseDescriptor(doc.config, `${where} config`);
  const layersRaw = doc.layers ?? [];
  if (!Array.isArray(layersRaw)) throw new InvalidDocumentError(`${where}: "layers" is not an array`);
  const layers = layersRaw.map((l, i) => parseDescriptor(l, `${where} layers[${i}]`));
  const out: ParsedManifest = { kind: 'image', mediaType, config, layers };
  if (doc.subject !== undefined) out.subject = parseDescriptor(doc.subject, `${where} subject`);
  return out;
}

/** Blobs (not manifests) an image manifest needs: its config, then its layers. */
export function imageBlobs(m: Extract<ParsedManifest, { kind: 'image' }>): Descriptor[] {
  return [m.config, ...m.layers];
}
