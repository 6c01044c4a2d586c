import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Parser, type ReadEntry } from 'tar';
import type { ImageRecord } from '../../src/bundle/format.js';
import { parsePlatformChoice } from '../../src/commands/talos-cache.js';
import { layerPieces, layerSize } from '../../src/talos-cache/layer-tar.js';
import { digestPath, registryDir, repositoryDir } from '../../src/talos-cache/names.js';
import { PlatformRefused, planCache, type CachePlan } from '../../src/talos-cache/plan.js';
import { imageFixture, metadataFixture } from '../helpers/metadata.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** A manifest with one config and one layer, both named by fake content. */
function manifest(label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(`c-${label}`), size: 10 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(`l-${label}`), size: 100 }],
    }),
  );
}

function index(children: Array<{ bytes: Buffer; platform: string }>): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map(({ bytes, platform }) => {
        const [os, architecture, variant] = platform.split('/');
        return {
          mediaType: OCI_MANIFEST,
          digest: sha(bytes),
          size: bytes.length,
          platform: { os, architecture, ...(variant ? { variant } : {}) },
        };
      }),
    }),
  );
}

/** Metadata for a set of images, and the manifests by digest. */
function bundle(platformFilter: string[] | null = null) {
  const amd = manifest('amd');
  const arm = manifest('arm');
  const att = manifest('att');
  const idx = index([
    { bytes: amd, platform: 'linux/amd64' },
    { bytes: arm, platform: 'linux/arm64' },
    { bytes: att, platform: 'unknown/unknown' },
  ]);
  const single = manifest('single');
  const manifests = new Map([amd, arm, att, idx, single].map((b) => [sha(b), b]));
  const image = (over: Partial<ImageRecord>): ImageRecord =>
    imageFixture({ size: 0, blobs: [...manifests.keys()], ...over });
  const metadata = metadataFixture(
    [
      image({
        reference: 'reg.local:5000/sys/app:v1',
        registry: 'reg.local:5000',
        repository: 'sys/app',
        tag: 'v1',
        digest: sha(idx),
        mediaType: OCI_INDEX,
      }),
      image({
        reference: 'docker.io/library/busybox@' + sha(single),
        registry: 'docker.io',
        repository: 'library/busybox',
        digest: sha(single),
      }),
    ],
    { platforms: platformFilter },
  );
  return { metadata, manifests, amd, arm, att, idx, single };
}

function paths(plan: CachePlan): string[] {
  return plan.files.map((f) => f.path);
}

describe('talos-cache names', () => {
  it('writes host:port as host_port_ and keeps docker.io', () => {
    expect(registryDir('reg.local:5000')).toBe('reg.local_5000_');
    expect(registryDir('docker.io')).toBe('docker.io');
    expect(registryDir('index.docker.io')).toBe('docker.io');
    expect(repositoryDir('ghcr.io', 'siderolabs/kubelet')).toBe('manifests/ghcr.io/siderolabs/kubelet');
    expect(digestPath('x', `sha256:${'a'.repeat(64)}`)).toBe(`x/digest/sha256-${'a'.repeat(64)}`);
  });

  it('refuses a name that could leave the tree', () => {
    expect(() => repositoryDir('ghcr.io', 'a/../b')).toThrow(/cannot be named/);
    expect(() => registryDir('[::1]:5000')).toThrow(/cannot be named/);
  });
});

describe('talos-cache plan', () => {
  it('default platform: the tag and digest files, the amd64 manifest, its config and layer', () => {
    const b = bundle();
    const plan = planCache(b.metadata, (d) => b.manifests.get(d)!, [{ os: 'linux', architecture: 'amd64' }]);
    const app = 'manifests/reg.local_5000_/sys/app';
    expect(paths(plan)).toEqual(
      [
        `${app}/reference/v1`,
        `${app}/digest/${sha(b.idx).replace(':', '-')}`,
        `${app}/digest/${sha(b.amd).replace(':', '-')}`,
        `blob/${sha('c-amd').replace(':', '-')}`,
        `blob/${sha('l-amd').replace(':', '-')}`,
        `manifests/docker.io/library/busybox/digest/${sha(b.single).replace(':', '-')}`,
        `blob/${sha('c-single').replace(':', '-')}`,
        `blob/${sha('l-single').replace(':', '-')}`,
      ].sort(),
    );
    const tagFile = plan.files.find((f) => f.path.endsWith('reference/v1'))!;
    expect('bytes' in tagFile && tagFile.bytes.equals(b.idx)).toBe(true);
    expect(plan.images.map((i) => i.platforms)).toEqual([['linux/amd64'], []]);
    expect(plan.directories).toContain('manifests/reg.local_5000_/sys');
  });

  it('all: every child, attestations included', () => {
    const b = bundle();
    const plan = planCache(b.metadata, (d) => b.manifests.get(d)!, 'all');
    expect(plan.images[0]!.platforms).toEqual(['linux/amd64', 'linux/arm64', 'unknown/unknown']);
    expect(paths(plan)).toContain(`blob/${sha('l-att').replace(':', '-')}`);
  });

  it('refuses a platform an image lacks, naming it, and a platform the export filter left out', () => {
    const b = bundle();
    const lookup = (d: string) => b.manifests.get(d)!;
    expect(() => planCache(b.metadata, lookup, [{ os: 'linux', architecture: 's390x' }])).toThrow(
      /reg\.local:5000\/sys\/app:v1 has no linux\/s390x \(it has linux\/amd64, linux\/arm64\)/,
    );
    const filtered = bundle(['linux/amd64']);
    expect(() => planCache(filtered.metadata, lookup, [{ os: 'linux', architecture: 'arm64' }])).toThrow(
      PlatformRefused,
    );
    expect(() => planCache(filtered.metadata, lookup, 'all')).toThrow(/--platform all needs a bundle/);
  });

  it('parses --platform: all alone, or platforms', () => {
    expect(parsePlatformChoice(['all'])).toBe('all');
    expect(parsePlatformChoice(['linux/arm64', 'linux/amd64,linux/arm64'])).toEqual([
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 'amd64' },
    ]);
    expect(() => parsePlatformChoice(['all', 'linux/amd64'])).toThrow(/alone/);
    expect(() => parsePlatformChoice(['linux'])).toThrow(/invalid platform/);
  });
});

describe('talos-cache layer tar', () => {
  it('is sorted, 0644/0755, stamped, and its size is known before writing', async () => {
    const b = bundle();
    const plan = planCache(b.metadata, (d) => b.manifests.get(d)!, 'all');
    const stamp = { mtime: new Date(1_700_000_000_000) };
    const bytes = Buffer.concat(
      [...layerPieces(plan, stamp)].map((p) => (Buffer.isBuffer(p) ? p : Buffer.alloc(p.size, 7))),
    );
    expect(bytes.length).toBe(layerSize(plan, stamp));
    const entries: Array<{ path: string; mode: number; mtime: number }> = [];
    await new Promise<void>((resolve, reject) => {
      const parser = new Parser({
        onReadEntry: (e: ReadEntry) => {
          entries.push({ path: e.path, mode: e.mode!, mtime: e.mtime!.getTime() });
          e.resume();
        },
      });
      parser.on('end', resolve);
      parser.on('error', reject);
      parser.end(bytes);
    });
    const names = entries.map((e) => e.path.replace(/\/$/, ''));
    expect(names).toEqual([...names].sort());
    expect(names[0]).toBe('blob');
    for (const e of entries) expect(e.mode).toBe(e.path.endsWith('/') ? 0o755 : 0o644);
    expect(new Set(entries.map((e) => e.mtime))).toEqual(new Set([1_700_000_000_000]));
  });
});
