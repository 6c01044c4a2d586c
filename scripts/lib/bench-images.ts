/**
 * The benchmark's image set: what a Talos cluster pulls (the default image list) plus a few
 * workloads, at a chosen total size of unique compressed layers. Like samples.ts it writes skopeo
 * `oci:` (OCI-typed images, one shared layout) and `dir:` (Docker-typed ones) sources, but its
 * layers are streamed to disk instead of built in memory, so gigabytes stay cheap, and it has the
 * shape that matters for throughput: two platforms, base layers shared across images, many tiny
 * layers, a few large ones.
 *
 * Layers are real gzip (stored blocks, level 0) around a one-file tar of random bytes: valid for
 * any consumer that unpacks them, incompressible like real compressed layers, and fast to make.
 * A set is cached in its folder; `images.json`, written last, marks it complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { MediaTypes, type SampleImage, type SampleKind } from './samples.js';
import { sha256Digest } from './digest.js';

export interface ImageSet {
  images: SampleImage[];
  /** Bytes of all distinct blobs (layers, configs, manifests): what a bundle carries. */
  uniqueBytes: number;
  blobs: number;
  layers: number;
}

interface Spec {
  upstream: string;
  kind: SampleKind;
  platforms: string[];
  bases: string[]; // shared layer stacks from BASES, bottom first
  layers: number[]; // the image's own layers, MiB per platform at a 1 GiB set
  attestations?: boolean; // buildkit attestation manifests in the index
}

const MiB = 1024 * 1024;
const AMD_ARM = ['linux/amd64', 'linux/arm64'];
// An image's arm64 build is a bit smaller than its amd64 one, as with real Go binaries.
const ARCH_FACTOR: Record<string, number> = { amd64: 1, arm64: 0.93 };

/** Base layer stacks shared by several images (per platform), as image families share them. */
const BASES: Record<string, number[]> = {
  distroless: [0.3, 0.9],
  'go-runner': [1.2],
  siderolabs: [5],
  debian: [28],
};

// Sizes are loosely those of the real images; the whole set is rescaled to the requested size.
const SPECS: Spec[] = [
  {
    upstream: 'ghcr.io/siderolabs/flannel:v0.25.7',
    kind: 'oci-index',
    platforms: AMD_ARM,
    bases: ['siderolabs'],
    layers: [9, 1.5, 0.02],
  },
  {
    upstream: 'registry.k8s.io/coredns/coredns:v1.11.3',
    kind: 'docker-list',
    platforms: AMD_ARM,
    bases: ['distroless'],
    layers: [16],
  },
  {
    upstream: 'gcr.io/etcd-development/etcd:v3.5.16',
    kind: 'docker-list',
    platforms: AMD_ARM,
    bases: ['distroless'],
    layers: [9, 8, 6, 0.01],
  },
  {
    upstream: 'registry.k8s.io/kube-apiserver:v1.31.1',
    kind: 'oci-index',
    platforms: AMD_ARM,
    bases: ['distroless', 'go-runner'],
    layers: [28],
  },
  {
    upstream: 'registry.k8s.io/kube-controller-manager:v1.31.1',
    kind: 'oci-index',
    platforms: AMD_ARM,
    bases: ['distroless', 'go-runner'],
    layers: [26],
  },
  {
    upstream: 'registry.k8s.io/kube-scheduler:v1.31.1',
    kind: 'oci-index',
    platforms: AMD_ARM,
    bases: ['distroless', 'go-runner'],
    layers: [18],
  },
  {
    upstream: 'registry.k8s.io/kube-proxy:v1.31.1',
    kind: 'oci-index',
    platforms: AMD_ARM,
    bases: ['distroless', 'go-runner'],
    layers: [11, 9],
  },
  {
    upstream: 'ghcr.io/siderolabs/kubelet:v1.31.1',
    kind: 'oci-index',
    platforms: AMD_ARM,
    bases: ['siderolabs'],
    layers: [20, 32, 0.01],
    attestations: true,
  },
  {
    upstream: 'ghcr.io/siderolabs/installer:v1.8.0',
    kind: 'oci-index',
    platforms: AMD_ARM,
    bases: ['siderolabs'],
    layers: [150, 45, 4, 0.3],
  },
  { upstream: 'registry.k8s.io/pause:3.10', kind: 'docker-list', platforms: AMD_ARM, bases: [], layers: [0.3] },
  // Workloads: an official image with many tiny layers, one with attestations, a site's own
  // single-arch OCI build, and a single-arch Docker image.
  {
    upstream: 'docker.io/library/postgres:16.4',
    kind: 'docker-list',
    platforms: AMD_ARM,
    bases: ['debian'],
    layers: [0.001, 4, 1.3, 0.001, 1.5, 8, 0.001, 0.001, 52, 0.01, 0.001, 0.001, 0.001],
  },
  {
    upstream: 'docker.io/library/nginx:1.27.2',
    kind: 'oci-index',
    platforms: AMD_ARM,
    bases: ['debian'],
    layers: [40, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001],
    attestations: true,
  },
  {
    upstream: 'ghcr.io/acme/billing-api:2024.09.1',
    kind: 'oci-manifest',
    platforms: ['linux/amd64'],
    bases: ['distroless'],
    layers: [22, 0.3],
  },
  {
    upstream: 'docker.io/library/busybox:1.36.1',
    kind: 'docker-manifest',
    platforms: ['linux/amd64'],
    bases: [],
    layers: [2.1],
  },
];

const CREATED = '2024-09-12T00:00:00Z';
const hex = (digest: string) => digest.slice('sha256:'.length);
const sha256 = sha256Digest;

interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

/** One-file ustar header; only the fields a tar reader needs. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const octal = (offset: number, width: number, n: number) =>
    h.write(`${n.toString(8).padStart(width - 1, '0')}\0`, offset, 'ascii');
  h.write(name, 0, 'ascii');
  octal(100, 8, 0o755);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, Date.parse(CREATED) / 1000);
  h.write('0', 156, 'ascii');
  h.write('ustar\u000000', 257, 'ascii');
  h.write(' '.repeat(8), 148, 'ascii'); // the checksum counts its own field as spaces
  h.write(
    `${h
      .reduce((s, b) => s + b, 0)
      .toString(8)
      .padStart(6, '0')}\0 `,
    148,
    'ascii',
  );
  return h;
}

/**
 * Streams a layer into `blobsDir` under its digest. The random payload comes from
 * crypto.randomBytes (over 2 GB/s here, much faster than a seeded cipher keystream on this CPU);
 * the set is cached, so it need not be reproducible byte for byte.
 */
async function writeLayer(
  blobsDir: string,
  mediaType: string,
  name: string,
  payload: number,
): Promise<Blob & { diffId: string }> {
  const diff = createHash('sha256');
  const gz = createHash('sha256');
  let size = 0;
  const tmp = join(blobsDir, `.partial-${randomBytes(6).toString('hex')}`);
  await pipeline(
    async function* () {
      const hashed = (b: Buffer) => (diff.update(b), b);
      yield hashed(tarHeader(name, payload));
      for (let left = payload; left > 0; left -= 4 * MiB) yield hashed(randomBytes(Math.min(4 * MiB, left)));
      yield hashed(Buffer.alloc(((512 - (payload % 512)) % 512) + 1024)); // padding, then the end-of-archive blocks
    },
    zlib.createGzip({ level: 0, chunkSize: MiB }),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        gz.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(tmp),
  );
  const digest = `sha256:${gz.digest('hex')}`;
  await rename(tmp, join(blobsDir, hex(digest)));
  return { mediaType, digest, size, diffId: `sha256:${diff.digest('hex')}` };
}

function parsePlatform(p: string): { os: string; architecture: string; variant?: string } {
  const [os = '', architecture = '', variant] = p.split('/');
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Rescale factor so that the set's unique layers add up to `targetBytes`. */
function scaleFor(targetBytes: number): number {
  let mib = 0;
  const seenBases = new Set<string>();
  for (const spec of SPECS) {
    for (const platform of spec.platforms) {
      const f = ARCH_FACTOR[parsePlatform(platform).architecture] ?? 1;
      for (const base of spec.bases) {
        if (seenBases.has(`${base}/${platform}`)) continue;
        seenBases.add(`${base}/${platform}`);
        mib += BASES[base]!.reduce((a, b) => a + b, 0) * f;
      }
      mib += spec.layers.reduce((a, b) => a + b, 0) * f;
    }
  }
  return targetBytes / (mib * MiB);
}

/** Returns the cached set in `dir`, generating it first when absent or incomplete. */
export async function ensureImageSet(
  dir: string,
  targetBytes: number,
  log: (line: string) => void = () => {},
): Promise<ImageSet> {
  const marker = join(dir, 'images.json');
  if (existsSync(marker)) return JSON.parse(await readFile(marker, 'utf8')) as ImageSet;
  await rm(dir, { recursive: true, force: true });
  log(`generating a ${(targetBytes / 1024 ** 3).toFixed(2)} GiB image set in ${dir}`);
  const started = Date.now();

  const ociDir = join(dir, 'oci');
  const blobsDir = join(ociDir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const scale = scaleFor(targetBytes);
  const layerSize = (mib: number, platform: string) =>
    Math.max(64, Math.round(mib * scale * MiB * (ARCH_FACTOR[parsePlatform(platform).architecture] ?? 1)));
  // Every blob lives once in the shared OCI layout; Docker-typed images hard-link theirs into their dir: folders.
  const all = new Map<string, Blob>();
  const baseLayers = new Map<string, Array<Blob & { diffId: string }>>();
  const putJson = async (mediaType: string, value: unknown, indent?: number): Promise<Blob & { bytes: Buffer }> => {
    // Docker's tools write indented JSON and buildkit compact JSON: digests cover the exact bytes.
    const bytes = Buffer.from(JSON.stringify(value, null, indent));
    const b = { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
    await writeFile(join(blobsDir, hex(b.digest)), bytes);
    all.set(b.digest, b);
    return b;
  };
  const descriptor = (b: Blob, extra: object = {}) => ({
    mediaType: b.mediaType,
    digest: b.digest,
    size: b.size,
    ...extra,
  });

  const ociIndex: object[] = [];
  const images: SampleImage[] = [];
  for (const spec of SPECS) {
    const docker = spec.kind.startsWith('docker');
    const layerType = docker ? MediaTypes.dockerLayer : MediaTypes.ociLayer;
    const colon = spec.upstream.lastIndexOf(':');
    const repository = spec.upstream.slice(spec.upstream.indexOf('/') + 1, colon);
    const tag = spec.upstream.slice(colon + 1);
    const name = repository.split('/').pop()!;
    const imageBlobs = new Map<string, Blob>();
    const children: Array<Blob & { bytes: Buffer }> = [];
    const entries: object[] = [];
    const attestations: object[] = [];

    for (const platform of spec.platforms) {
      const layers: Array<Blob & { diffId: string }> = [];
      for (const base of spec.bases) {
        // The same bytes under either media type: Docker and OCI images of one family share layers.
        const key = `${base}/${platform}`;
        if (!baseLayers.has(key)) {
          const made = [];
          for (const [i, mib] of BASES[base]!.entries())
            made.push(await writeLayer(blobsDir, layerType, `${base}/${i}`, layerSize(mib, platform)));
          baseLayers.set(key, made);
        }
        layers.push(...baseLayers.get(key)!.map((l) => ({ ...l, mediaType: layerType })));
      }
      for (const [i, mib] of spec.layers.entries())
        layers.push(await writeLayer(blobsDir, layerType, `usr/local/${name}/${i}`, layerSize(mib, platform)));
      const config = await putJson(docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig, {
        ...parsePlatform(platform),
        created: CREATED,
        config: { Entrypoint: [`/usr/local/bin/${name}`] },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map(() => ({ created: CREATED, created_by: 'airgap-bundle benchmark image set' })),
      });
      const manifestType = docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
      const manifest = await putJson(
        manifestType,
        {
          schemaVersion: 2,
          mediaType: manifestType,
          config: descriptor(config),
          layers: layers.map((l) => descriptor(l)),
        },
        docker ? 3 : undefined,
      );
      for (const b of [config, ...layers]) {
        imageBlobs.set(b.digest, b);
        all.set(b.digest, b);
      }
      children.push(manifest);
      entries.push(descriptor(manifest, { platform: parsePlatform(platform) }));
      if (spec.attestations) {
        const statement = await putJson(MediaTypes.inToto, {
          _type: 'https://in-toto.io/Statement/v0.1',
          predicateType: 'https://spdx.dev/Document',
          subject: [{ name: `pkg:docker/${spec.upstream}`, digest: { sha256: hex(manifest.digest) } }],
        });
        const attConfig = await putJson(MediaTypes.ociConfig, {
          architecture: 'unknown',
          os: 'unknown',
          config: {},
          rootfs: { type: 'layers', diff_ids: [statement.digest] },
        });
        const att = await putJson(MediaTypes.ociManifest, {
          schemaVersion: 2,
          mediaType: MediaTypes.ociManifest,
          config: descriptor(attConfig),
          layers: [
            descriptor(statement, { annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } }),
          ],
        });
        imageBlobs.set(statement.digest, statement).set(attConfig.digest, attConfig);
        children.push(att);
        attestations.push(
          descriptor(att, {
            platform: { architecture: 'unknown', os: 'unknown' },
            annotations: {
              'vnd.docker.reference.digest': manifest.digest,
              'vnd.docker.reference.type': 'attestation-manifest',
            },
          }),
        );
      }
    }

    const single = spec.kind === 'oci-manifest' || spec.kind === 'docker-manifest';
    const listType = docker ? MediaTypes.dockerList : MediaTypes.ociIndex;
    const top = single
      ? children.pop()!
      : await putJson(
          listType,
          { schemaVersion: 2, mediaType: listType, manifests: [...entries, ...attestations] },
          docker ? 3 : undefined,
        );
    for (const b of [top, ...children]) imageBlobs.set(b.digest, b);

    let source: string;
    if (!docker) {
      const ref = `${repository}:${tag}`;
      ociIndex.push(descriptor(top, { annotations: { 'org.opencontainers.image.ref.name': ref } }));
      source = `oci:${ociDir}:${ref}`;
    } else {
      // skopeo's dir: layout: the top manifest in manifest.json, list instances in <hex>.manifest.json.
      const folder = join(dir, `dir-${repository.replaceAll('/', '-')}-${tag}`);
      await mkdir(folder);
      await writeFile(join(folder, 'version'), 'Directory Transport Version: 1.1\n');
      await writeFile(join(folder, 'manifest.json'), top.bytes);
      for (const c of children) await writeFile(join(folder, `${hex(c.digest)}.manifest.json`), c.bytes);
      for (const b of imageBlobs.values()) {
        if (b !== top && !children.includes(b as Blob & { bytes: Buffer }))
          await link(join(blobsDir, hex(b.digest)), join(folder, hex(b.digest)));
      }
      source = `dir:${folder}`;
    }
    images.push({
      repository,
      tag,
      upstream: spec.upstream,
      kind: spec.kind,
      source,
      digest: top.digest,
      mediaType: top.mediaType,
      platforms: [...spec.platforms],
      size: [...imageBlobs.values()].reduce((s, b) => s + b.size, 0),
    });
  }
  await writeFile(join(ociDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(ociDir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: ociIndex }),
  );

  const blobs = [...all.values()];
  const set: ImageSet = {
    images,
    uniqueBytes: blobs.reduce((s, b) => s + b.size, 0),
    blobs: blobs.length,
    layers: blobs.filter((b) => b.mediaType === MediaTypes.ociLayer || b.mediaType === MediaTypes.dockerLayer).length,
  };
  await writeFile(marker, JSON.stringify(set, null, 2));
  log(
    `image set ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${images.length} images, ${set.blobs} blobs, ${(set.uniqueBytes / MiB).toFixed(0)} MiB unique`,
  );
  return set;
}
