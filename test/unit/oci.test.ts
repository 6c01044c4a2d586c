import { describe, expect, it } from 'vitest';
import { parseManifest, UnsupportedManifestError } from '../../src/oci/manifest.js';
import { InvalidDocumentError } from '../../src/oci/descriptor.js';
import { parsePlatform, PlatformError } from '../../src/oci/platform.js';
import { selectChildren } from '../../src/oci/resolve.js';
import { MediaType } from '../../src/oci/media-types.js';

const d = (n: string) => `sha256:${n.repeat(64)}`;
const child = (
  digest: string,
  os: string,
  architecture: string,
  variant?: string,
  annotations?: Record<string, string>,
) => ({
  mediaType: MediaType.ociManifest,
  digest,
  size: 100,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
  ...(annotations ? { annotations } : {}),
});

describe('platform selection', () => {
  const children = [
    child(d('1'), 'linux', 'amd64'),
    child(d('2'), 'linux', 'arm64', 'v8'),
    child(d('3'), 'linux', 'arm', 'v7'),
    child(d('4'), 'unknown', 'unknown', undefined, {
      'vnd.docker.reference.type': 'attestation-manifest',
      'vnd.docker.reference.digest': d('1'),
    }),
    child(d('5'), 'unknown', 'unknown', undefined, {
      'vnd.docker.reference.type': 'attestation-manifest',
      'vnd.docker.reference.digest': d('2'),
    }),
  ];
  it('keeps everything without a filter', () => {
    expect(selectChildren(children, undefined).size).toBe(5);
  });
  it('keeps a platform and its attestation only', () => {
    expect([...selectChildren(children, [parsePlatform('linux/amd64')])].sort()).toEqual([d('1'), d('4')]);
  });
  it('matches every variant when the filter names none', () => {
    expect([...selectChildren(children, [parsePlatform('linux/arm64')])].sort()).toEqual([d('2'), d('5')]);
    expect([...selectChildren(children, [parsePlatform('linux/arm/v6')])]).toEqual([]);
  });
  it('rejects malformed platforms', () => {
    expect(() => parsePlatform('amd64')).toThrow(PlatformError);
    expect(() => parsePlatform('linux/amd64/v1/x')).toThrow(PlatformError);
  });
});

describe('parseManifest', () => {
  const bytes = (o: unknown) => Buffer.from(JSON.stringify(o));
  it('reads an index and an image manifest', () => {
    const idx = parseManifest(
      bytes({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifestList,
        manifests: [child(d('1'), 'linux', 'amd64')],
      }),
      undefined,
      'x',
    );
    expect(idx.kind).toBe('index');
    const img = parseManifest(
      bytes({ schemaVersion: 2, config: { mediaType: MediaType.ociConfig, digest: d('a'), size: 2 }, layers: [] }),
      MediaType.ociManifest,
      'x',
    );
    expect(img.kind === 'image' && img.config.digest).toBe(d('a'));
  });
  it('refuses Docker schema 1 with a clear message', () => {
    expect(() =>
      parseManifest(bytes({ schemaVersion: 1, name: 'x', fsLayers: [] }), MediaType.dockerSchema1Signed, 'busybox'),
    ).toThrow(UnsupportedManifestError);
    expect(() => parseManifest(bytes({ schemaVersion: 1 }), undefined, 'busybox')).toThrow(/schema 1/);
  });
  it('refuses bad descriptors and non-JSON', () => {
    expect(() => parseManifest(Buffer.from('not json'), MediaType.ociManifest, 'x')).toThrow(InvalidDocumentError);
    expect(() =>
      parseManifest(
        bytes({ config: { mediaType: 'application/a', digest: 'sha256:xyz', size: 1 }, layers: [] }),
        MediaType.ociManifest,
        'x',
      ),
    ).toThrow(/digest/);
    expect(() =>
      parseManifest(
        bytes({ config: { mediaType: 'application/a', digest: d('a'), size: -1 }, layers: [] }),
        MediaType.ociManifest,
        'x',
      ),
    ).toThrow(/size/);
  });
});
