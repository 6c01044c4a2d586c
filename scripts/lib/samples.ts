// Deterministic, Talos-like sample images for tests, demos and benchmarks. They mimic what a real
// cluster pulls (multi-arch OCI indexes, Docker manifest lists, single-arch images, buildkit
// attestations, base layers shared between images) without any network access.
import crypto from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { run } from './process.js';
import type { RunningRegistry } from './registry.js';
import { sha256Digest } from './digest.js';

export type SampleKind = 'oci-index' | 'docker-list' | 'oci-manifest' | 'docker-manifest';

export interface SampleImage {
  repository: string; // path without registry host, e.g. "siderolabs/kubelet"
  tag: string;
  upstream: string; // the public reference it stands for, e.g. "ghcr.io/siderolabs/kubelet:v1.31.1"
  kind: SampleKind;
  source: string; // skopeo source reference: "oci:DIR/oci:REF" or "dir:DIR/dir-REF"
  digest: string; // sha256 of the top-level manifest or index bytes
  mediaType: string;
  platforms: string[]; // runnable platforms, e.g. ["linux/amd64","linux/arm64"] (attestations excluded)
  size: number; // bytes of all distinct blobs of the image, manifests included
}

export interface SampleOptions {
  seed?: number; // default 1
  layerBytes?: number; // approximate size of a "large" layer, default 256 KiB
}

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  inToto: 'application/vnd.in-toto+json',
} as const;

interface Spec {
  upstream: string;
  kind: SampleKind;
  platforms: string[];
  base?: string; // images naming the same base share its layer (per platform), as real families do
  scale: number; // size of the main layer, in units of layerBytes
  attestations?: boolean; // add buildkit-style attestation manifests to the index
}

const AMD_ARM = ['linux/amd64', 'linux/arm64'];

const SPECS: Spec[] = [
  {
    upstream: 'ghcr.io/siderolabs/flannel:0.28.8',
    kind: 'oci-index',
    platforms: AMD_ARM,
    base: 'siderolabs',
    scale: 0.5,
  },
  {
    upstream: 'registry.k8s.io/coredns/coredns:v1.11.3',
    kind: 'docker-list',
    platforms: AMD_ARM,
    base: 'distroless',
    scale: 0.5,
  },
  {
    upstream: 'gcr.io/etcd-development/etcd:v3.5.16',
    kind: 'docker-list',
    platforms: AMD_ARM,
    base: 'distroless',
    scale: 1,
  },
  { upstream: 'registry.k8s.io/kube-apiserver:v1.31.1', kind: 'oci-index', platforms: AMD_ARM, base: 'kube', scale: 1 },
  {
    upstream: 'registry.k8s.io/kube-controller-manager:v1.31.1',
    kind: 'oci-index',
    platforms: AMD_ARM,
    base: 'kube',
    scale: 1,
  },
  {
    upstream: 'registry.k8s.io/kube-scheduler:v1.31.1',
    kind: 'oci-index',
    platforms: AMD_ARM,
    base: 'kube',
    scale: 0.5,
  },
  {
    upstream: 'registry.k8s.io/kube-proxy:v1.31.1',
    kind: 'oci-index',
    platforms: [...AMD_ARM, 'linux/arm/v7'],
    base: 'kube',
    scale: 0.5,
  },
  {
    upstream: 'ghcr.io/siderolabs/kubelet:v1.31.1',
    kind: 'oci-index',
    platforms: AMD_ARM,
    base: 'siderolabs',
    scale: 1,
    attestations: true,
  },
  {
    upstream: 'ghcr.io/siderolabs/installer:v1.8.0',
    kind: 'oci-index',
    platforms: AMD_ARM,
    base: 'siderolabs',
    scale: 2,
  },
  { upstream: 'registry.k8s.io/pause:3.9', kind: 'docker-list', platforms: AMD_ARM, scale: 0.01 },
  {
    upstream: 'registry.k8s.io/networking/kube-network-policies:v1.1.0',
    kind: 'oci-manifest',
    platforms: ['linux/amd64'],
    base: 'distroless',
    scale: 0.5,
  },
  { upstream: 'docker.io/library/busybox:1.36', kind: 'docker-manifest', platforms: ['linux/amd64'], scale: 0.5 },
];

// Fixed timestamps keep tar headers and image configs byte-identical between runs.
const MTIME = Date.UTC(2024, 8, 12) / 1000;
const CREATED = new Date(MTIME * 1000).toISOString();

interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, bytes, size: bytes.length, digest: sha256Digest(bytes) };
}

function descriptor(b: Blob, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType: b.mediaType, digest: b.digest, size: b.size, ...extra };
}

/**
 * Seeded pseudo-random bytes: an AES-256-CTR keystream keyed by (seed, label). Keying by label means
 * the same label always yields the same bytes, which is how shared base layers come out identical.
 */
function randomBytes(seed: number, label: string, length: number): Buffer {
  const key = crypto.createHash('sha256').update(`${seed}\0${label}`).digest();
  return crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** A minimal ustar writer: enough for plain files and directories, with fixed owner and mtime. */
function tarArchive(entries: Array<{ name: string; data?: Buffer; mode?: number }>): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data, mode } of entries) {
    const isDir = data === undefined;
    const size = data?.length ?? 0;
    const header = Buffer.alloc(512);
    const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
    const octal = (offset: number, length: number, n: number) =>
      field(offset, length, n.toString(8).padStart(length - 1, '0') + '\0');
    field(0, 100, name);
    octal(100, 8, mode ?? (isDir ? 0o755 : 0o644));
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, size);
    octal(136, 12, MTIME);
    field(156, 1, isDir ? '5' : '0');
    field(257, 8, 'ustar\u000000');
    field(265, 32, 'root');
    field(297, 32, 'root');
    // The checksum is computed with its own field read as spaces.
    field(148, 8, ' '.repeat(8));
    const sum = header.reduce((acc, byte) => acc + byte, 0);
    field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    parts.push(header);
    if (data) parts.push(data, Buffer.alloc((512 - (size % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

interface Layer {
  blob: Blob;
  diffId: string;
}

/** gzip from node's zlib writes mtime 0 and no file name, so equal input gives equal bytes. */
function layer(mediaType: string, entries: Parameters<typeof tarArchive>[0]): Layer {
  const tar = tarArchive(entries);
  return { blob: blob(mediaType, zlib.gzipSync(tar, { level: 6 })), diffId: sha256Digest(tar) };
}

function parsePlatform(p: string): { architecture: string; os: string; variant?: string } {
  const [os = '', architecture = '', variant] = p.split('/');
  return variant ? { architecture, os, variant } : { architecture, os };
}

// Docker's tooling writes 3-space indented manifests, buildkit compact ones: the two byte forms
// catch any consumer that re-serialises JSON instead of keeping the exact bytes it was given.
function manifestBytes(docker: boolean, value: unknown): Buffer {
  return Buffer.from(docker ? JSON.stringify(value, null, 3) : JSON.stringify(value));
}

interface Built {
  top: Blob;
  children: Blob[]; // manifests referenced by an index or list
  blobs: Blob[]; // configs and layers
}

function buildPlatformImage(
  spec: Spec,
  repository: string,
  platform: string,
  seed: number,
  layerBytes: number,
  docker: boolean,
): Built {
  const layerType = docker ? MediaTypes.dockerLayer : MediaTypes.ociLayer;
  const name = repository.split('/').pop()!;
  const layers: Layer[] = [];
  if (spec.base) {
    const label = `base/${spec.base}/${platform}`;
    layers.push(
      layer(layerType, [
        { name: 'etc/' },
        { name: 'etc/os-release', data: Buffer.from(`ID=${spec.base}\nPLATFORM=${platform}\n`) },
        { name: 'lib/' },
        { name: `lib/lib${spec.base}.so`, data: randomBytes(seed, label, Math.round(layerBytes / 2)) },
      ]),
    );
  }
  layers.push(
    layer(layerType, [
      { name: 'usr/' },
      { name: 'usr/local/' },
      { name: 'usr/local/bin/' },
      {
        name: `usr/local/bin/${name}`,
        data: randomBytes(seed, `app/${repository}/${platform}`, Math.max(1, Math.round(layerBytes * spec.scale))),
        mode: 0o755,
      },
    ]),
    layer(layerType, [
      { name: `etc/${name}/` },
      { name: `etc/${name}/version`, data: Buffer.from(`${spec.upstream}\n${platform}\n`) },
    ]),
  );
  const config = blob(
    docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig,
    Buffer.from(
      JSON.stringify({
        ...parsePlatform(platform),
        created: CREATED,
        config: {
          Entrypoint: [`/usr/local/bin/${name}`],
          Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map(() => ({ created: CREATED, created_by: 'airgap-bundle sample generator' })),
      }),
    ),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest,
    config: descriptor(config),
    layers: layers.map((l) => descriptor(l.blob)),
  };
  return {
    top: blob(manifest.mediaType, manifestBytes(docker, manifest)),
    children: [],
    blobs: [config, ...layers.map((l) => l.blob)],
  };
}

/** An attestation manifest as buildkit attaches one per platform: platform unknown/unknown, in-toto layer. */
function buildAttestation(upstream: string, subject: Blob): Built {
  const statement = blob(
    MediaTypes.inToto,
    Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v0.1',
        predicateType: 'https://spdx.dev/Document',
        subject: [{ name: `pkg:docker/${upstream}`, digest: { sha256: subject.digest.slice('sha256:'.length) } }],
        predicate: { spdxVersion: 'SPDX-2.3', name: upstream, packages: [] },
      }),
    ),
  );
  const config = blob(
    MediaTypes.ociConfig,
    Buffer.from(
      JSON.stringify({
        architecture: 'unknown',
        os: 'unknown',
        config: {},
        rootfs: { type: 'layers', diff_ids: [statement.digest] },
      }),
    ),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: descriptor(config),
    layers: [descriptor(statement, { annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } })],
  };
  return {
    top: blob(MediaTypes.ociManifest, manifestBytes(false, manifest)),
    children: [],
    blobs: [config, statement],
  };
}

function buildImage(spec: Spec, repository: string, seed: number, layerBytes: number): Built {
  const docker = spec.kind.startsWith('docker');
  if (spec.kind === 'oci-manifest' || spec.kind === 'docker-manifest') {
    return buildPlatformImage(spec, repository, spec.platforms[0]!, seed, layerBytes, docker);
  }
  const children: Blob[] = [];
  const blobs: Blob[] = [];
  const entries: Descriptor[] = [];
  const attestations: Descriptor[] = [];
  for (const platform of spec.platforms) {
    const img = buildPlatformImage(spec, repository, platform, seed, layerBytes, docker);
    children.push(img.top);
    blobs.push(...img.blobs);
    entries.push(descriptor(img.top, { platform: parsePlatform(platform) }));
    if (spec.attestations) {
      const att = buildAttestation(spec.upstream, img.top);
      children.push(att.top);
      blobs.push(...att.blobs);
      attestations.push(
        descriptor(att.top, {
          platform: { architecture: 'unknown', os: 'unknown' },
          annotations: {
            'vnd.docker.reference.digest': img.top.digest,
            'vnd.docker.reference.type': 'attestation-manifest',
          },
        }),
      );
    }
  }
  // buildkit lists all platform images first, then their attestations.
  const index = {
    schemaVersion: 2,
    mediaType: docker ? MediaTypes.dockerList : MediaTypes.ociIndex,
    manifests: [...entries, ...attestations],
  };
  return { top: blob(index.mediaType, manifestBytes(docker, index)), children, blobs };
}

function parseUpstream(upstream: string): { repository: string; tag: string } {
  const slash = upstream.indexOf('/');
  const colon = upstream.lastIndexOf(':');
  return { repository: upstream.slice(slash + 1, colon), tag: upstream.slice(colon + 1) };
}

const hex = (digest: string) => digest.slice('sha256:'.length);

/**
 * Writes the sample images under `dir` and describes them. OCI-typed images go into one shared OCI
 * layout (`dir/oci`, one index.json entry per image); Docker-typed ones each get a skopeo `dir:`
 * folder, because skopeo's `oci:` transport ignores Docker media types on read.
 */
export async function generateSampleImages(dir: string, opts: SampleOptions = {}): Promise<SampleImage[]> {
  const seed = opts.seed ?? 1;
  const layerBytes = opts.layerBytes ?? 256 * 1024;
  const ociDir = path.join(dir, 'oci');
  await mkdir(path.join(ociDir, 'blobs', 'sha256'), { recursive: true });
  const ociIndex: Descriptor[] = [];
  const images: SampleImage[] = [];

  for (const spec of SPECS) {
    const { repository, tag } = parseUpstream(spec.upstream);
    const ref = `${repository.replaceAll('/', '-')}-${tag}`;
    const built = buildImage(spec, repository, seed, layerBytes);
    const unique = new Map<string, Blob>();
    for (const b of [built.top, ...built.children, ...built.blobs]) unique.set(b.digest, b);

    let source: string;
    if (spec.kind.startsWith('oci')) {
      for (const b of unique.values()) await writeFile(path.join(ociDir, 'blobs', 'sha256', hex(b.digest)), b.bytes);
      ociIndex.push(descriptor(built.top, { annotations: { 'org.opencontainers.image.ref.name': ref } }));
      source = `oci:${ociDir}:${ref}`;
    } else {
      // skopeo 1.9's dir: layout, as `skopeo copy --all` writes it: the top manifest (or list) in
      // manifest.json, each list instance in <hex>.manifest.json, configs and layers as <hex>.
      const folder = path.join(dir, `dir-${ref}`);
      await mkdir(folder, { recursive: true });
      await writeFile(path.join(folder, 'version'), 'Directory Transport Version: 1.1\n');
      await writeFile(path.join(folder, 'manifest.json'), built.top.bytes);
      for (const child of built.children)
        await writeFile(path.join(folder, `${hex(child.digest)}.manifest.json`), child.bytes);
      for (const b of built.blobs) await writeFile(path.join(folder, hex(b.digest)), b.bytes);
      source = `dir:${folder}`;
    }

    images.push({
      repository,
      tag,
      upstream: spec.upstream,
      kind: spec.kind,
      source,
      digest: built.top.digest,
      mediaType: built.top.mediaType,
      platforms: [...spec.platforms],
      size: [...unique.values()].reduce((sum, b) => sum + b.size, 0),
    });
  }

  await writeFile(path.join(ociDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    path.join(ociDir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: ociIndex }),
  );
  return images;
}

/** Pushes every image with `skopeo copy --all --preserve-digests`, two at a time (the machine has 2 cores). */
export async function seedRegistry(reg: RunningRegistry, images: SampleImage[]): Promise<void> {
  const queue = [...images];
  const worker = async () => {
    for (let img = queue.shift(); img; img = queue.shift()) {
      // --insecure-policy: a fresh machine may lack /etc/containers/policy.json, and these are local test images.
      await run('skopeo', [
        '--insecure-policy',
        'copy',
        '--quiet',
        '--all',
        '--preserve-digests',
        ...reg.skopeoArgs('dest'),
        img.source,
        `docker://${reg.host}/${img.repository}:${img.tag}`,
      ]);
    }
  };
  await Promise.all([worker(), worker()]);
}

/** The image list as `talosctl images` prints it, pointed at `host`: one "HOST/repository:tag" per line. */
export function talosLikeList(images: SampleImage[], host: string): string {
  return images.map((img) => `${host}/${img.repository}:${img.tag}\n`).join('');
}
