import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { classifyEntryName } from '../../src/bundle/entry-names.js';
import { planImport, PlanError } from '../../src/import/plan.js';
import { targetRepository } from '../../src/reference/mapping.js';
import { parseMetadata, MetadataError } from '../../src/bundle/metadata.js';
import { parseSidecar, sidecarLine } from '../../src/bundle/sidecar.js';
import { fsKeepsHoles, keepsHoles } from '../../src/export/in-place-writer.js';
import type { BundleMetadata, ImageRecord } from '../../src/bundle/format.js';
import { imageFixture, metadataFixture } from '../helpers/metadata.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

function image(
  reference: string,
  registry: string,
  repository: string,
  tag: string,
  digest: string,
  blobs: string[],
): ImageRecord {
  return imageFixture({ reference, registry, repository, tag, digest, blobs });
}

function metadata(images: ImageRecord[]): BundleMetadata {
  const digests = [...new Set(images.flatMap((i) => i.blobs))];
  return metadataFixture(images, {
    blobs: digests.map((digest) => ({
      digest,
      size: 10,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      role: images.some((i) => i.digest === digest) ? 'manifest' : 'layer',
    })),
  });
}

describe('entry names', () => {
  it.each([
    ['airgap-bundle.json', 'metadata'],
    ['index.json', 'index'],
    ['oci-layout', 'oci-layout'],
    ['blobs/', 'directory'],
    ['blobs/sha256/', 'directory'],
    [`blobs/sha256/${'a'.repeat(64)}`, 'blob'],
    [`./blobs/sha256/${'a'.repeat(64)}`, 'blob'],
  ])('accepts %s as %s', (name, kind) => {
    expect(classifyEntryName(name).kind).toBe(kind);
  });
  it.each([
    ['/etc/passwd', 'absolute'],
    ['blobs/../../x', '..'],
    ['blobs/sha256/abc', 'lowercase hex of the right length'],
    [`blobs/sha1/${'a'.repeat(40)}`, 'unsupported digest algorithm'],
    [`blobs/sha512/${'a'.repeat(128)}`, 'unsupported digest algorithm'],
    [`blobs/sha256/${'a'.repeat(64)}/x`, 'not part of an OCI image layout'],
    ['README', 'not part of an OCI image layout'],
  ])('refuses %s', (name, reason) => {
    const c = classifyEntryName(name);
    expect(c.kind).toBe('invalid');
    expect(c.kind === 'invalid' && c.reason).toContain(reason);
  });
});

describe('import plan', () => {
  it('strips the registry host by default, keeps it (":" as "_") or prefixes on request', () => {
    const im = { registry: 'localhost:5000', repository: 'siderolabs/installer' };
    expect(targetRepository(im, { keepRegistryHost: false })).toBe('siderolabs/installer');
    expect(targetRepository(im, { keepRegistryHost: true })).toBe('localhost_5000/siderolabs/installer');
    expect(targetRepository(im, { keepRegistryHost: true, repoPrefix: 'proj/' })).toBe(
      'proj/localhost_5000/siderolabs/installer',
    );
  });

  it('refuses two references landing on one repository:tag with different content, before pushing', () => {
    const m = metadata([
      image('ghcr.io/foo/bar:1', 'ghcr.io', 'foo/bar', '1', d('1'), [d('1'), d('a')]),
      image('docker.io/foo/bar:1', 'docker.io', 'foo/bar', '1', d('2'), [d('2'), d('b')]),
    ]);
    expect(() => planImport(m, { keepRegistryHost: false })).toThrow(PlanError);
    expect(() => planImport(m, { keepRegistryHost: false })).toThrow(/--keep-registry-host/);
    expect(planImport(m, { keepRegistryHost: true }).images.map((p) => p.repository)).toEqual([
      'ghcr.io/foo/bar',
      'docker.io/foo/bar',
    ]);
  });

  it('shares a blob between repositories and orders manifests as the tar does', () => {
    const m = metadata([
      image('a.io/x:1', 'a.io', 'x', '1', d('1'), [d('1'), d('c')]),
      image('a.io/y:1', 'a.io', 'y', '1', d('2'), [d('2'), d('c')]),
    ]);
    const plan = planImport(m, { keepRegistryHost: false });
    expect(plan.blobRepos.get(d('c'))).toEqual(['x', 'y']);
    expect(plan.images[0]!.manifests).toEqual([d('1')]);
  });

  it('refuses an invalid repo prefix', () => {
    expect(() => planImport(metadata([]), { keepRegistryHost: false, repoPrefix: 'Bad Prefix' })).toThrow(
      /--repo-prefix/,
    );
  });
});

describe('metadata validation', () => {
  const good = metadata([image('a.io/x:1', 'a.io', 'x', '1', d('1'), [d('1'), d('c')])]);
  const bytes = (o: unknown) => Buffer.from(JSON.stringify(o));
  it('accepts what the writer produces', () => {
    expect(parseMetadata(bytes(good)).images).toHaveLength(1);
  });
  it.each([
    ['a wrong format', { ...good, format: 'other' }, /format/],
    ['a newer version', { ...good, formatVersion: 99 }, /upgrade/],
    ['a bad digest', { ...good, blobs: [{ ...good.blobs[0], digest: 'sha256:zz' }] }, /invalid digest/],
    ['a negative size', { ...good, blobs: [{ ...good.blobs[0], size: -1 }, good.blobs[1]] }, /invalid size/],
    ['an image needing an unlisted blob', { ...good, blobs: good.blobs.slice(0, 1) }, /does not list/],
    ['a duplicate blob', { ...good, blobs: [...good.blobs, good.blobs[0]] }, /listed twice/],
  ])('refuses %s', (_n, doc, re) => {
    expect(() => parseMetadata(bytes(doc))).toThrow(MetadataError);
    expect(() => parseMetadata(bytes(doc))).toThrow(re);
  });
});

describe('sidecar', () => {
  it('round-trips the sha256sum format', () => {
    const line = sidecarLine('f'.repeat(64), 'b.tar');
    expect(line).toBe(`${'f'.repeat(64)}  b.tar\n`);
    expect(parseSidecar(line)).toEqual({ sha256: 'f'.repeat(64), fileName: 'b.tar' });
    expect(parseSidecar('garbage')).toBeUndefined();
  });
});

describe('where a bundle can be written in place', () => {
  it('out of order on filesystems with holes, in order on FAT and exFAT (which zero-fill a gap)', async () => {
    expect(fsKeepsHoles(0xef53)).toBe(true); // ext4
    expect(fsKeepsHoles(0x01021994)).toBe(true); // tmpfs
    expect(fsKeepsHoles(0x58465342)).toBe(true); // xfs
    expect(fsKeepsHoles(0x4d44)).toBe(false); // vfat, msdos
    expect(fsKeepsHoles(0x2011bab0)).toBe(false); // exfat
    expect(await keepsHoles(tmpdir())).toBe(true);
  });
});
