import { InvalidDocumentError, parseDescriptor, type Descriptor } from './descriptor.js';
import { isImageManifestType, isIndexType, isSchema1Type, MediaType } from './media-types.js';
import { parseBoundedJson } from '../util/json.js';
import { printable } from '../util/text.js';

/** Manifests larger than this are refused: Distribution itself caps them at 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Far above any real image (overlay filesystems stop at 128 layers); bounds the work one manifest can cause. */
export const MAX_LAYERS = 1000;
/** Far above any real index (dozens of platforms and attestations); bounds the fan-out of one index. */
export const MAX_INDEX_ENTRIES = 1000;

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
    throw new InvalidDocumentError(
      `${where}: manifest of ${bytes.byteLength} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`,
    );
  }
  let doc: Record<string, unknown>;
  try {
    const parsed: unknown = parseBoundedJson(bytes);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    doc = parsed as Record<string, unknown>;
  } catch (err) {
    // The parser's message quotes the input: escaped like any registry string.
    throw new InvalidDocumentError(`${where}: manifest is not valid JSON (${printable((err as Error).message, 120)})`);
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
    else
      throw new UnsupportedManifestError(
        `${where}: unsupported manifest media type "${printable(String(mediaType ?? null), 80)}"`,
      );
  }

  if (isIndexType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new InvalidDocumentError(`${where}: index has no "manifests" array`);
    if (doc.manifests.length > MAX_INDEX_ENTRIES)
      throw new InvalidDocumentError(
        `${where}: index lists ${doc.manifests.length} manifests, more than ${MAX_INDEX_ENTRIES}`,
      );
    const manifests = doc.manifests.map((m, i) => parseDescriptor(m, `${where} manifests[${i}]`));
    return { kind: 'index', mediaType, manifests };
  }
  const config = parseDescriptor(doc.config, `${where} config`);
  const layersRaw = doc.layers ?? [];
  if (!Array.isArray(layersRaw)) throw new InvalidDocumentError(`${where}: "layers" is not an array`);
  if (layersRaw.length > MAX_LAYERS)
    throw new InvalidDocumentError(`${where}: ${layersRaw.length} layers, more than ${MAX_LAYERS}`);
  const layers = layersRaw.map((l, i) => parseDescriptor(l, `${where} layers[${i}]`));
  const out: ParsedManifest = { kind: 'image', mediaType, config, layers };
  if (doc.subject !== undefined) out.subject = parseDescriptor(doc.subject, `${where} subject`);
  return out;
}

/** Blobs (not manifests) an image manifest needs: its config, then its layers. */
export function imageBlobs(m: Extract<ParsedManifest, { kind: 'image' }>): Descriptor[] {
  return [m.config, ...m.layers];
}
