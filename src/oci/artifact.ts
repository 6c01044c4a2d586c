import type { CarriedRecord } from '../bundle/format.js';
import { sha256Digest } from './digest.js';
import { MediaType } from './media-types.js';

/**
 * An OCI artifact this tool builds itself rather than copies from a registry:
 * a Helm chart packaged from a folder or taken from a classic repository, a
 * file. Export carries it like an image (src/export/collect.ts takes a list of
 * these beside the references it resolves), so verify, import, serve, volumes
 * and deltas need nothing of their own for it.
 */
export interface BuiltArtifact {
  /** Repository under CARRIED_REGISTRY: `charts/metrics-server`, `files/talosctl-linux-amd64`. */
  repository: string;
  tag: string;
  /** What it is and where it came from, as the bundle's metadata records it. */
  carried: CarriedRecord;
  /** The manifest, exactly as it is carried: its digest is the sha256 of these bytes. */
  manifest: Buffer;
  /** Its config and layers, each by digest, with where its bytes are read from. */
  blobs: BuiltBlob[];
}

export interface BuiltBlob {
  digest: string;
  size: number;
  mediaType: string;
  role: 'config' | 'layer';
  /**
   * Held in memory (a chart, a config: small, bounded where read) or a local
   * file (a carried file: read again, and checked again, when it is written).
   */
  content: { bytes: Buffer } | { path: string };
}

/** The empty config of an artifact that needs none (OCI image-spec 1.1, "Guidance for an empty descriptor"). */
export const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  bytes: Buffer.from('{}'),
} as const;

export interface ArtifactLayer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/**
 * The manifest of an artifact (an OCI 1.1 image manifest): the config and
 * layers given, in order. Serialised once, with a fixed key order, so that the
 * same content always gives the same digest.
 */
export function artifactManifest(parts: {
  artifactType?: string;
  config: { mediaType: string; digest: string; size: number };
  layers: ArtifactLayer[];
  annotations?: Record<string, string>;
}): { bytes: Buffer; digest: string; mediaType: string } {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    ...(parts.artifactType !== undefined ? { artifactType: parts.artifactType } : {}),
    config: { mediaType: parts.config.mediaType, digest: parts.config.digest, size: parts.config.size },
    layers: parts.layers.map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
      ...(l.annotations && Object.keys(l.annotations).length > 0 ? { annotations: sortedKeys(l.annotations) } : {}),
    })),
    ...(parts.annotations && Object.keys(parts.annotations).length > 0
      ? { annotations: sortedKeys(parts.annotations) }
      : {}),
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  return { bytes, digest: sha256Digest(bytes), mediaType: MediaType.ociManifest };
}

function sortedKeys(map: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
