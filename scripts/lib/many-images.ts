/**
 * Thousands of small images written straight into a Distribution registry's filesystem storage:
 * pushing them one by one would take longer than the measurement they serve. The layout is the
 * one the registry itself writes (checked by pushing an image with skopeo and reading the tree):
 *
 *   docker/registry/v2/blobs/sha256/<xx>/<hex>/data                       every blob, manifests too
 *   docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link      configs and layers
 *   .../_manifests/revisions/sha256/<hex>/link                            every manifest and index
 *   .../_manifests/tags/<tag>/current/link                                the tag
 *   .../_manifests/tags/<tag>/index/sha256/<hex>/link                     the tag's history
 *
 * each link holding `sha256:<hex>` and nothing else. The registry reads this from disk on every
 * request (no cache is configured), so it may be written while the registry runs.
 *
 * The set: one base layer shared by every image, one unique layer and config per image, and
 * 30 % of the images two-platform OCI indexes (a config per platform, the same two layers).
 */
import crypto from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { MediaTypes } from './samples.js';
import { sha256Hex } from './digest.js';

export interface ManyImage {
  repository: string;
  tag: string;
  digest: string;
  /** Manifests, indexes, configs and layers of this image, distinct. */
  blobs: number;
}

export interface ManySet {
  images: ManyImage[];
  /** Distinct blobs of the whole set. */
  blobs: number;
  bytes: number;
}

interface Blob {
  hex: string;
  bytes: Buffer;
  mediaType: string;
}

const blob = (mediaType: string, bytes: Buffer): Blob => ({ hex: sha256Hex(bytes), bytes, mediaType });
const descriptor = (b: Blob, extra: Record<string, unknown> = {}) => ({
  mediaType: b.mediaType,
  digest: `sha256:${b.hex}`,
  size: b.bytes.length,
  ...extra,
});

/** Bytes that look random but are the same for the same label (deterministic sets). */
function pseudoRandom(label: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i * 32 < length; i++)
    crypto
      .createHash('sha256')
      .update(`${label}:${i}`)
      .digest()
      .copy(out, i * 32);
  return out;
}

const gzipLayer = (label: string, length: number) =>
  blob(MediaTypes.ociLayer, zlib.gzipSync(pseudoRandom(label, length), { level: 1 }));

function platformManifest(base: Blob, unique: Blob, name: string, arch: string): { manifest: Blob; config: Blob } {
  const config = blob(
    MediaTypes.ociConfig,
    Buffer.from(
      JSON.stringify({
        architecture: arch,
        os: 'linux',
        config: { Labels: { 'org.example.image': name } },
        rootfs: { type: 'layers', diff_ids: [`sha256:${base.hex}`, `sha256:${unique.hex}`] },
      }),
    ),
  );
  const manifest = blob(
    MediaTypes.ociManifest,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: descriptor(config),
        layers: [descriptor(base), descriptor(unique)],
      }),
    ),
  );
  return { manifest, config };
}

/** Writes the set into `storageDir` (the registry's `rootdirectory`) and returns it. */
/**
 * With `signer`, every image also gets a cosign `sha256-<hex>.sig` manifest: one simple-signing
 * payload naming `registry/repository` and the image's digest, signed with the key (ECDSA, SHA-256).
 */
export async function writeManySet(
  storageDir: string,
  count: number,
  log: (line: string) => void,
  signer?: { key: crypto.KeyObject; registry: string },
): Promise<ManySet> {
  const v2 = join(storageDir, 'docker', 'registry', 'v2');
  const written = new Set<string>();
  let bytes = 0;
  const putBlob = async (b: Blob) => {
    if (written.has(b.hex)) return;
    written.add(b.hex);
    bytes += b.bytes.length;
    const dir = join(v2, 'blobs', 'sha256', b.hex.slice(0, 2), b.hex);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'data'), b.bytes);
  };
  const link = async (dir: string, b: Blob) => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'link'), `sha256:${b.hex}`);
  };
  const base = gzipLayer('base', 64 * 1024);
  const images: ManyImage[] = [];
  for (let i = 0; i < count; i++) {
    const image = await writeImage(i, { v2, base, putBlob, link });
    if (signer) await writeSignature(image, signer, { v2, base, putBlob, link });
    images.push(image);
    if ((i + 1) % 1000 === 0) log(`generated ${i + 1}/${count} images`);
  }
  return { images, blobs: written.size, bytes };
}

interface Writer {
  v2: string;
  base: Blob;
  putBlob: (b: Blob) => Promise<void>;
  link: (dir: string, b: Blob) => Promise<void>;
}

/** Image `i`: `many/img-NNNNN:v1`, a two-platform index for 3 in every 10. */
async function writeImage(i: number, w: Writer): Promise<ManyImage> {
  const repository = `many/img-${String(i).padStart(5, '0')}`;
  const tag = 'v1';
  const repo = join(w.v2, 'repositories', repository);
  const unique = gzipLayer(`unique-${i}`, 2 * 1024);
  const arches = i % 10 < 3 ? ['amd64', 'arm64'] : ['amd64'];
  const platforms = arches.map((arch) => ({ arch, ...platformManifest(w.base, unique, repository, arch) }));
  const layers = [w.base, unique, ...platforms.map((p) => p.config)];
  const manifests = platforms.map((p) => p.manifest);
  let top = manifests[0]!;
  if (platforms.length > 1) {
    top = blob(
      MediaTypes.ociIndex,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaTypes.ociIndex,
          manifests: platforms.map((p) => descriptor(p.manifest, { platform: { architecture: p.arch, os: 'linux' } })),
        }),
      ),
    );
    manifests.push(top);
  }
  for (const b of [...layers, ...manifests]) await w.putBlob(b);
  for (const b of layers) await w.link(join(repo, '_layers', 'sha256', b.hex), b);
  for (const m of manifests) await w.link(join(repo, '_manifests', 'revisions', 'sha256', m.hex), m);
  await w.link(join(repo, '_manifests', 'tags', tag, 'current'), top);
  await w.link(join(repo, '_manifests', 'tags', tag, 'index', 'sha256', top.hex), top);
  return { repository, tag, digest: `sha256:${top.hex}`, blobs: layers.length + manifests.length };
}

/** cosign's legacy signature of one image: payload and config blobs, the `.sig` manifest, its tag. */
async function writeSignature(
  image: ManyImage,
  signer: { key: crypto.KeyObject; registry: string },
  w: Writer,
): Promise<void> {
  const payload = blob(
    'application/vnd.dev.cosign.simplesigning.v1+json',
    Buffer.from(
      JSON.stringify({
        critical: {
          identity: { 'docker-reference': `${signer.registry}/${image.repository}` },
          image: { 'docker-manifest-digest': image.digest },
          type: 'cosign container image signature',
        },
        optional: null,
      }),
    ),
  );
  const config = blob(
    MediaTypes.ociConfig,
    Buffer.from(JSON.stringify({ architecture: '', config: {}, os: '', rootfs: { type: 'layers', diff_ids: [] } })),
  );
  const signature = crypto.sign('sha256', payload.bytes, signer.key).toString('base64');
  const manifest = blob(
    MediaTypes.ociManifest,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: descriptor(config),
        layers: [descriptor(payload, { annotations: { 'dev.cosignproject.cosign/signature': signature } })],
      }),
    ),
  );
  const repo = join(w.v2, 'repositories', image.repository);
  const tag = `${image.digest.replace(':', '-')}.sig`;
  for (const b of [payload, config, manifest]) await w.putBlob(b);
  for (const b of [payload, config]) await w.link(join(repo, '_layers', 'sha256', b.hex), b);
  await w.link(join(repo, '_manifests', 'revisions', 'sha256', manifest.hex), manifest);
  await w.link(join(repo, '_manifests', 'tags', tag, 'current'), manifest);
  await w.link(join(repo, '_manifests', 'tags', tag, 'index', 'sha256', manifest.hex), manifest);
}
