/**
 * The bundle format: an uncompressed POSIX tar holding an OCI image layout,
 * with this tool's metadata as the first entry so a streaming reader knows the
 * whole content before the first blob arrives.
 *
 * Entry order: metadata, [signature], oci-layout, index.json, blobs/, blobs/sha256/, then
 * configs and layers (largest first, the order they download in), then image
 * manifests, then indexes (children before parents), ties sorted by digest.
 * An importer streaming the tar has therefore pushed every blob a manifest
 * needs before it meets the manifest.
 */
export const METADATA_NAME = 'airgap-bundle.json';
/** Ed25519 signature of the metadata entry, right after it (signed bundles only). */
export const SIGNATURE_NAME = 'airgap-bundle.sig';
export const OCI_LAYOUT_NAME = 'oci-layout';
export const INDEX_NAME = 'index.json';
export const BUNDLE_FORMAT = 'airgap-bundle/v1';
export const FORMAT_VERSION = 1;

/**
 * Bounds on what a bundle may hold. The reader refuses anything past them as
 * hostile, and export refuses to write a bundle past them, so no bundle is ever
 * written that the isolated side would refuse. Sized for the largest mirrors in
 * use (an OpenShift release with operators: about 10,000 images) with room.
 */
export const MAX_METADATA_BYTES = 64 * 1024 * 1024;
export const MAX_INDEX_BYTES = 16 * 1024 * 1024;
/** Images (references, signatures and other artifacts included) in one bundle. */
export const MAX_IMAGES = 20_000;
/** Blobs (manifests, configs, layers and parts) listed in one bundle. */
export const MAX_BLOBS = 200_000;
/** Blobs one image may need: its manifests, configs and layers. */
export const MAX_BLOBS_PER_IMAGE = 10_000;
/** Signatures, attestations, SBOMs and referrers carried for one image. */
export const MAX_ARTIFACTS_PER_IMAGE = 100;
/** Indexes inside indexes: real images nest one level, rarely two. */
export const MAX_INDEX_DEPTH = 8;
/** What the walk of one image to export may hold (see `resolveImage`): what a bundle holds for one image. */
export const IMAGE_BOUNDS = { blobs: MAX_BLOBS_PER_IMAGE, indexDepth: MAX_INDEX_DEPTH } as const;
/** Strings the metadata holds that are not references or digests (tool version, media types, platforms). */
export const MAX_FIELD_LENGTH = 255;

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';

export type BlobRole = 'layer' | 'config' | 'manifest' | 'index';

export interface BlobRecord {
  digest: string;
  size: number;
  mediaType: string;
  role: BlobRole;
  /**
   * Not in this bundle: a delta leaves out what the isolated registry already
   * holds (from a receipt or an earlier bundle); the import checks it is there.
   */
  external?: boolean;
  /** For an external blob: a repository of the target registry known to hold it (from a receipt). */
  mountFrom?: string;
  /** In a volume set: the volume (1-based) carrying this config or layer. Manifests are in every volume. */
  volume?: number;
  /**
   * In a volume set, a config or layer larger than a volume: its bytes cut in
   * order into parts, each stored as a blob named by its own digest (so each is
   * checked on its own) in the volume given. The blob has no `volume` then.
   */
  parts?: BlobPart[];
}

export interface BlobPart {
  digest: string;
  size: number;
  volume: number;
}

export interface PlatformRecord {
  /** `os/arch[/variant]`, or `unknown/unknown` for attestations. */
  platform: string;
  digest: string;
  mediaType: string;
  /** False when the `--platform` filter left this child out of the bundle. */
  carried: boolean;
  /** For an attestation manifest: the digest of the manifest it describes. */
  attestationFor?: string;
}

export interface ImageRecord {
  /** Full normalised reference as requested: `ghcr.io/siderolabs/kubelet:v1.31.1`. */
  reference: string;
  registry: string;
  repository: string;
  tag?: string;
  /** Digest of the top-level manifest or index, as served upstream. */
  digest: string;
  mediaType: string;
  size: number;
  /** Children of an index, carried or not; for a single manifest, its own platform when known. */
  platforms: PlatformRecord[];
  /** Digests of index children deliberately left out (the `--platform` filter). */
  absent: string[];
  /** Every blob the image needs that the bundle carries, manifests included. */
  blobs: string[];
  /** Sum of the sizes of `blobs`. */
  bytes: number;
  /** A signature, attestation, SBOM or referrers index carried for another image. */
  artifact?: { kind: 'signature' | 'attestation' | 'sbom' | 'referrers' | 'referrer'; subject: string; of: string };
  /** Who signed the image, as the signature policy verified it at export (`export --verify-signatures`). */
  signed?: SignedRecord;
  /**
   * Not an image but a Helm chart or a file the bundle carries as an OCI
   * artifact, under the registry CARRIED_REGISTRY (src/reference/mapping.ts).
   */
  carried?: CarriedRecord;
}

export const CARRIED_KINDS = ['chart', 'file'] as const;

/** A chart or a file as the bundle carries it: what it is, and where it came from. */
export interface CarriedRecord {
  kind: (typeof CARRIED_KINDS)[number];
  /** The chart's name, or the file's plain name (no `/`, no `..`). */
  name: string;
  /** A chart's version (semver, `+` kept). */
  version?: string;
  /** A chart's appVersion. */
  appVersion?: string;
  /** Where it was taken from: a URL, an `oci://` reference or a local path, as given. */
  source: string;
  /** A file's permission bits (0 to 0o777), restored by `files`. */
  mode?: number;
}

/** A verified signature: the rule that required it, who made it, and the manifest that carries it. */
export interface SignedRecord {
  /** `rules[N] GLOB` of the policy export checked against. */
  rule: string;
  /** The certificate's subject (keyless) or the key's fingerprint. */
  signer: string;
  issuer?: string;
  logIndex?: number;
  /** When the log saw the signature, seconds since the epoch. */
  integratedTime?: number;
  /** Digest of the signature manifest (a `.sig` manifest or a Sigstore bundle referrer). */
  signature: string;
}

export interface BundleMetadata {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  tool: { name: string; version: string };
  /** Only when SOURCE_DATE_EPOCH asks for it: bundles are otherwise byte-reproducible. */
  created?: string;
  /** The `--platform` filter, or null for all platforms. */
  platforms: string[] | null;
  images: ImageRecord[];
  /** Every blob in the tar, in tar order. */
  blobs: BlobRecord[];
  /** Present when the bundle is a delta: what it was made against. */
  delta?: { against: string[] };
  /**
   * Present in each volume of a set: which one this is, how many there are, and
   * an id shared by the volumes of one export (they cannot be mixed with another).
   */
  volumes?: { index: number; count: number; set: string };
  /**
   * The Sigstore trusted root export checked keyless signatures against, as
   * compact JSON: covered by the bundle's checksum and signature, so the
   * isolated side may trust it when (and only when) that signature verifies.
   */
  trustedRoot?: { source: string; json: string };
}

/** A trusted root is a few KB; one far larger is no root. */
export const MAX_TRUSTED_ROOT_BYTES = 1024 * 1024;

/** Bytes the bundle itself carries: every blob but those a delta left out. */
export function carriedBytes(blobs: readonly BlobRecord[]): number {
  return blobs.reduce((sum, b) => sum + (b.external ? 0 : b.size), 0);
}

export function blobEntryName(digest: string): string {
  const colon = digest.indexOf(':');
  return `blobs/${digest.slice(0, colon)}/${digest.slice(colon + 1)}`;
}

/** Tar order of blob roles, see the module comment. */
export const ROLE_ORDER: Record<BlobRole, number> = { config: 0, layer: 0, manifest: 1, index: 2 };
