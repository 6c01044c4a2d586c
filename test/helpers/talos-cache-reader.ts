// A reader of Talos image caches written for the tests, independent of the writer under test: it
// resolves an image the way the node's registry server does (tag file → sha256 of its bytes → the
// digest file with identical bytes → every platform manifest → every blob under blob/, each hashed),
// and unpacks the `oci` wrapping with GNU tar. It shares no code with src/talos-cache.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const fileName = (digest: string) => digest.replace(':', '-');

export interface ResolvedImage {
  reference: string;
  digest: string;
  /** Platforms of the child manifests present (`unknown/unknown` for attestations); empty for a single manifest. */
  platforms: string[];
  /** Configs and layers found and hashed. */
  blobs: string[];
}

interface Descriptor {
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

/** `host:port` → `host_port_`, as Talos names a registry folder. */
function registryFolder(registry: string): string {
  const i = registry.lastIndexOf(':');
  return i > 0 ? `${registry.slice(0, i)}_${registry.slice(i + 1)}_` : registry;
}

/** Splits a full reference `registry/repo[:tag][@digest]`. */
export function splitReference(ref: string): { registry: string; repository: string; tag?: string; digest?: string } {
  const [name, digest] = ref.split('@') as [string, string?];
  const slash = name.indexOf('/');
  const registry = name.slice(0, slash);
  let repository = name.slice(slash + 1);
  let tag: string | undefined;
  const colon = repository.lastIndexOf(':');
  if (colon > 0) {
    tag = repository.slice(colon + 1);
    repository = repository.slice(0, colon);
  }
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

function readExact(path: string, digest: string, what: string): Buffer {
  if (!existsSync(path)) throw new Error(`${what}: ${path} is missing`);
  const bytes = readFileSync(path);
  if (sha256(bytes) !== digest) throw new Error(`${what}: ${path} does not hash to ${digest}`);
  return bytes;
}

/** Resolves one reference in a flat cache tree, every byte checked. */
export function resolveImage(root: string, reference: string): ResolvedImage {
  const ref = splitReference(reference);
  const dir = join(root, 'manifests', registryFolder(ref.registry), ...ref.repository.split('/'));
  let digest = ref.digest;
  if (ref.tag !== undefined) {
    const tagged = readFileSync(join(dir, 'reference', ref.tag));
    digest = sha256(tagged);
    if (ref.digest && ref.digest !== digest) throw new Error(`${reference}: the tag resolves to ${digest}`);
    const byDigest = readExact(join(dir, 'digest', fileName(digest)), digest, reference);
    if (!byDigest.equals(tagged)) throw new Error(`${reference}: digest file differs from the tag file`);
  }
  const top = JSON.parse(readExact(join(dir, 'digest', fileName(digest!)), digest!, reference).toString());
  const blobs: string[] = [];
  const platforms: string[] = [];
  const readManifest = (m: { config: Descriptor; layers: Descriptor[] }) => {
    for (const b of [m.config, ...m.layers]) {
      const bytes = readExact(join(root, 'blob', fileName(b.digest)), b.digest, `${reference} blob`);
      if (bytes.length !== b.size) throw new Error(`${reference}: blob ${b.digest} has the wrong size`);
      blobs.push(b.digest);
    }
  };
  if (Array.isArray(top.manifests)) {
    for (const child of top.manifests as Descriptor[]) {
      const path = join(dir, 'digest', fileName(child.digest));
      if (!existsSync(path)) continue;
      readManifest(JSON.parse(readExact(path, child.digest, reference).toString()));
      const p = child.platform;
      platforms.push(p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : 'unknown/unknown');
    }
  } else readManifest(top);
  return { reference, digest: digest!, platforms, blobs };
}

/** Every file under `root` (relative paths), with its permission bits. */
export function listTree(root: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else out.set(relative(root, path), st.mode & 0o777);
    }
  };
  walk(root);
  return out;
}

export interface OciCache {
  /** The one image's platform, from index.json and from its config. */
  indexPlatform: Descriptor['platform'];
  configPlatform: { os: string; architecture: string; variant?: string };
  layerDigest: string;
  layerMediaType: string;
  /** Where the layer was unpacked: a flat tree. */
  tree: string;
}

/** Reads the `oci` layout: one image, one layer, unpacked with GNU tar into `into`. */
export function unpackOci(dir: string, into: string): OciCache {
  const blob = (d: string) => readExact(join(dir, 'blobs', 'sha256', d.slice(7)), d, 'oci layout');
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  if (index.manifests.length !== 1) throw new Error(`index.json lists ${index.manifests.length} images, not one`);
  const desc = index.manifests[0];
  const manifest = JSON.parse(blob(desc.digest).toString());
  if (manifest.layers.length !== 1) throw new Error(`the image has ${manifest.layers.length} layers, not one`);
  const config = JSON.parse(blob(manifest.config.digest).toString());
  const layer = manifest.layers[0];
  blob(layer.digest);
  if (config.rootfs.diff_ids[0] !== layer.digest) throw new Error('the layer is not uncompressed (diff_id differs)');
  mkdirSync(into, { recursive: true });
  execFileSync('tar', ['-xf', join(dir, 'blobs', 'sha256', layer.digest.slice(7)), '-C', into, '--no-same-owner']);
  return {
    indexPlatform: desc.platform,
    configPlatform: {
      os: config.os,
      architecture: config.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
    },
    layerDigest: layer.digest,
    layerMediaType: layer.mediaType,
    tree: into,
  };
}

/** Modes of the layer tar's file entries, as GNU tar lists them (`-rw-r--r--`). */
export function layerModes(dir: string, layerDigest: string): string[] {
  const listing = execFileSync('tar', ['-tvf', join(dir, 'blobs', 'sha256', layerDigest.slice(7))]).toString();
  return listing
    .split('\n')
    .filter((l) => l.startsWith('-'))
    .map((l) => l.split(/\s+/)[0]!);
}
