import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { RunningRegistry } from '../../scripts/lib/registry.js';
import { sha256Digest } from '../../scripts/lib/digest.js';
import { pushBlob, pushImage, pushManifest } from './push-image.js';

const sha256 = sha256Digest;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export interface SignedImage {
  repository: string;
  tag: string;
  digest: string;
  publicKey: KeyObject;
  /** `sha256-<hex>.sig`: the cosign signature manifest. */
  signatureTag: string;
  signatureDigest: string;
  /** `sha256-<hex>`: the OCI referrers fallback index. */
  referrersTag: string;
  referrersDigest: string;
  /** The sigstore-bundle referrer manifest (with `subject`). */
  referrerDigest: string;
}

/** cosign's simple-signing payload for the image `digest` of `repository`. */
function cosignPayload(reg: RunningRegistry, repository: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `${reg.host}/${repository}` },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

/** The `sha256-<hex>.sig` manifest: the payload as its one layer, with `annotations`. */
async function pushSigManifest(
  reg: RunningRegistry,
  repository: string,
  digest: string,
  payload: Buffer,
  annotations: Record<string, string>,
) {
  await pushBlob(reg, repository, payload);
  const sigConfig = Buffer.from(
    JSON.stringify({
      architecture: '',
      config: {},
      created: '0001-01-01T00:00:00Z',
      os: '',
      rootfs: { type: 'layers', diff_ids: [sha256(payload)] },
    }),
  );
  await pushBlob(reg, repository, sigConfig);
  const signatureTag = `${digest.replace(':', '-')}.sig`;
  const sig = await pushManifest(
    reg,
    repository,
    signatureTag,
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(sigConfig),
        size: sigConfig.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: sha256(payload),
          size: payload.length,
          annotations,
        },
      ],
    },
    OCI_MANIFEST,
  );
  return { signatureTag, digest: sig.digest };
}

/**
 * An image signed as cosign signs (simple-signing payload, ECDSA P-256, the
 * `sha256-<hex>.sig` tag) and with an OCI 1.1 referrer (a sigstore bundle
 * manifest with `subject`, listed in the `sha256-<hex>` fallback index, since
 * this registry has no referrers API).
 */
export async function pushSignedImage(
  reg: RunningRegistry,
  repository = 'signed/app',
  tag = 'v1',
): Promise<SignedImage> {
  // A real layer (an empty tar, gzipped), so containerd can unpack the image.
  const tar = Buffer.alloc(1024);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] } }),
  );
  const image = await pushImage(reg, repository, tag, gzipSync(tar), config);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const payload = cosignPayload(reg, repository, image.digest);
  const signature = sign('sha256', payload, privateKey).toString('base64');
  const sig = await pushSigManifest(reg, repository, image.digest, payload, {
    'dev.cosignproject.cosign/signature': signature,
  });
  const signatureTag = sig.signatureTag;

  const empty = Buffer.from('{}');
  await pushBlob(reg, repository, empty);
  const bundle = Buffer.from(
    JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', messageSignature: { signature } }),
  );
  await pushBlob(reg, repository, bundle);
  const artifactType = 'application/vnd.dev.sigstore.bundle.v0.3+json';
  const refDoc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 },
    layers: [{ mediaType: artifactType, digest: sha256(bundle), size: bundle.length }],
    subject: { mediaType: OCI_MANIFEST, digest: image.digest, size: image.size },
  };
  const refBytes = Buffer.from(JSON.stringify(refDoc));
  const ref = await pushManifest(reg, repository, sha256(refBytes), refDoc, OCI_MANIFEST);
  const referrersTag = image.digest.replace(':', '-');
  const index = await pushManifest(
    reg,
    repository,
    referrersTag,
    {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: ref.digest, size: ref.size, artifactType }],
    },
    OCI_INDEX,
  );
  return {
    repository,
    tag,
    digest: image.digest,
    publicKey,
    signatureTag,
    signatureDigest: sig.digest,
    referrersTag,
    referrersDigest: index.digest,
    referrerDigest: ref.digest,
  };
}

/**
 * An image (unique to its repository) with a cosign `sha256-<hex>.sig` manifest whose one layer is
 * the simple-signing payload and whose annotations `annotate` makes for it (a keyless signature of
 * the tests' own Sigstore, say).
 */
export async function pushImageSignedBy(
  reg: RunningRegistry,
  repository: string,
  annotate: (payload: Buffer) => Promise<Record<string, string>>,
  tag = 'v1',
): Promise<{ digest: string; signatureDigest: string }> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, repository }),
  );
  const image = await pushImage(reg, repository, tag, gzipSync(Buffer.from(repository)), config);
  const payload = cosignPayload(reg, repository, image.digest);
  const sig = await pushSigManifest(reg, repository, image.digest, payload, await annotate(payload));
  return { digest: image.digest, signatureDigest: sig.digest };
}
