// Charts and files carried beside images: one registry name (bundle.invalid) that the mapping
// never gives a host path, that no mirror configuration names, that the metadata reader accepts
// only with a carried record (and a carried record only under it), and that export resolves
// through the same manifest walk as an image.
import { describe, expect, it } from 'vitest';
import type { BundleMetadata, CarriedRecord, ImageRecord } from '../../src/bundle/format.js';
import { isPlainFileName } from '../../src/bundle/carried.js';
import { MetadataError, parseMetadata } from '../../src/bundle/metadata.js';
import { summarize } from '../../src/commands/inspect.js';
import { BuiltArtifactError, resolveBuilt } from '../../src/export/built-artifacts.js';
import { imageVerificationConfig } from '../../src/mirror/image-verification.js';
import { planMirrors } from '../../src/mirror/plan.js';
import { artifactManifest, EMPTY_CONFIG, type BuiltArtifact } from '../../src/oci/artifact.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { CARRIED_REGISTRY, repositoryMapping, targetRepository } from '../../src/reference/mapping.js';
import { imageFixture, metadataFixture } from '../helpers/metadata.js';

const FILE = Buffer.from('#!/bin/sh\necho talosctl\n');
const OCTETS = 'application/octet-stream';

function fileArtifact(over: Partial<BuiltArtifact> = {}, bytes = FILE): BuiltArtifact {
  const config = { mediaType: EMPTY_CONFIG.mediaType, digest: sha256Digest(EMPTY_CONFIG.bytes), size: 2 };
  const layer = { mediaType: OCTETS, digest: sha256Digest(bytes), size: bytes.length };
  const manifest = artifactManifest({
    artifactType: 'application/vnd.example.file',
    config,
    layers: [{ ...layer, annotations: { 'org.opencontainers.image.title': 'talosctl' } }],
  });
  return {
    repository: 'files/talosctl',
    tag: 'talosctl',
    carried: { kind: 'file', name: 'talosctl', source: './talosctl', mode: 0o755 },
    manifest: manifest.bytes,
    blobs: [
      { ...config, role: 'config', content: { bytes: EMPTY_CONFIG.bytes } },
      { ...layer, role: 'layer', content: { bytes } },
    ],
    ...over,
  };
}

/** The metadata of a bundle holding the one file artifact, as export writes it. */
function carriedMetadata(carried: Partial<CarriedRecord> | undefined, registry = CARRIED_REGISTRY): BundleMetadata {
  const a = fileArtifact();
  const manifestDigest = sha256Digest(a.manifest);
  const image: ImageRecord = imageFixture({
    reference: `${registry}/files/talosctl:talosctl`,
    registry,
    repository: 'files/talosctl',
    tag: 'talosctl',
    digest: manifestDigest,
    size: a.manifest.length,
    blobs: [manifestDigest, ...a.blobs.map((b) => b.digest)].sort(),
    bytes: a.manifest.length + a.blobs.reduce((s, b) => s + b.size, 0),
    ...(carried ? { carried: { ...a.carried, ...carried } as CarriedRecord } : {}),
  });
  return metadataFixture([image], {
    blobs: [
      ...a.blobs.map(({ digest, size, mediaType, role }) => ({ digest, size, mediaType, role })),
      {
        digest: manifestDigest,
        size: a.manifest.length,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        role: 'manifest',
      },
    ],
  });
}

const read = (m: BundleMetadata) => parseMetadata(Buffer.from(JSON.stringify(m)));

describe('the carried registry', () => {
  it('maps to its own path under a prefix, host kept or not', () => {
    const chart = { registry: CARRIED_REGISTRY, repository: 'charts/metrics-server' };
    expect(targetRepository(chart, repositoryMapping(false))).toBe('charts/metrics-server');
    expect(targetRepository(chart, repositoryMapping(true))).toBe('charts/metrics-server');
    expect(targetRepository(chart, repositoryMapping(true, 'airgap'))).toBe('airgap/charts/metrics-server');
    // An image beside it keeps its host, as before.
    expect(targetRepository({ registry: 'ghcr.io', repository: 'a/b' }, repositoryMapping(true))).toBe('ghcr.io/a/b');
  });

  it('gets no mirror and no image verification rule', () => {
    const plan = planMirrors({
      endpoint: 'http://10.5.0.1:6000',
      registries: ['ghcr.io', CARRIED_REGISTRY],
      keepRegistryHost: true,
      skipFallback: true,
      insecureSkipVerify: false,
    });
    expect(plan.entries.map((e) => e.registry)).toEqual(['ghcr.io']);
    const rules = imageVerificationConfig(['ghcr.io', CARRIED_REGISTRY], 'PEM').rules as Array<{ image: string }>;
    expect(rules.map((r) => r.image)).toEqual(['ghcr.io/*']);
  });

  it('a bundle of charts and files alone needs no per-registry mirror', () => {
    expect(() =>
      planMirrors({
        endpoint: 'http://10.5.0.1:6000',
        registries: [CARRIED_REGISTRY],
        keepRegistryHost: true,
        skipFallback: true,
        insecureSkipVerify: false,
      }),
    ).toThrow(/--keep-registry-host each source registry needs its own mirror/);
  });
});

describe('carried records in the metadata', () => {
  it('are read back as written', () => {
    const m = read(carriedMetadata({}));
    expect(m.images[0]!.carried).toEqual({ kind: 'file', name: 'talosctl', source: './talosctl', mode: 0o755 });
  });

  it.each([
    ['a name with a slash', { name: '../etc/passwd' }, /carried.name is not a plain file name/],
    ['a name with a line break', { name: 'a\nb' }, /carried.name holds control characters/],
    ['an unknown kind', { kind: 'binary' as 'file' }, /carried.kind is not one of chart, file/],
    ['a mode past 0777', { mode: 0o4755 }, /carried.mode is not a whole number from 0 to 511/],
  ])('refuse %s', (_what, carried, message) => {
    expect(() => read(carriedMetadata(carried))).toThrow(MetadataError);
    expect(() => read(carriedMetadata(carried))).toThrow(message);
  });

  it('are refused outside the carried registry, and the carried registry without one', () => {
    expect(() => read(carriedMetadata({}, 'ghcr.io'))).toThrow(/is a carried file outside bundle.invalid/);
    expect(() => read(carriedMetadata(undefined))).toThrow(/is under bundle.invalid but is no carried chart or file/);
  });

  it('are listed by inspect apart from images, a file by its own sha256', () => {
    const s = summarize(read(carriedMetadata({})));
    expect(s.images).toEqual([]);
    expect(s.charts).toEqual([]);
    expect(s.files).toEqual([
      expect.objectContaining({
        name: 'talosctl',
        sha256: sha256Digest(FILE).slice(7),
        size: FILE.length,
        mode: '0755',
      }),
    ]);
  });
});

describe('plain file names', () => {
  it.each(['talosctl-linux-amd64', 'metal-amd64.iso', 'a b', 'ünïcode'])('accept %s', (name) =>
    expect(isPlainFileName(name)).toBe(true),
  );
  it.each(['', '.', '..', 'a/b', 'a\\b', 'a\u0000', 'a\u2028', 'x'.repeat(256)])('refuse %j', (name) =>
    expect(isPlainFileName(name)).toBe(false),
  );
});

describe('resolveBuilt', () => {
  it('walks a built artifact like an image and reads its blobs from where they are', async () => {
    const [r] = await resolveBuilt([fileArtifact()]);
    expect(r!.name).toBe(`${CARRIED_REGISTRY}/files/talosctl:talosctl`);
    expect(r!.image.blobs.map((b) => b.role)).toEqual(['config', 'layer']);
    const { body, size } = await r!.origin.openBlob(sha256Digest(FILE));
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks)).toEqual(FILE);
    expect(size).toBe(FILE.length);
  });

  it('refuses two artifacts under one name', async () => {
    await expect(resolveBuilt([fileArtifact(), fileArtifact()])).rejects.toThrow(
      /would both be .*: give one another name/,
    );
  });

  it('refuses a manifest listing a blob that was not built', async () => {
    const a = fileArtifact();
    await expect(resolveBuilt([{ ...a, blobs: a.blobs.slice(0, 1) }])).rejects.toThrow(BuiltArtifactError);
  });

  it('refuses a tag outside the tag grammar', async () => {
    await expect(resolveBuilt([fileArtifact({ tag: 'has space' })])).rejects.toThrow(/is no valid reference/);
  });
});
