// The validated metadata model and the structural checks behind it: every field of a bundle's
// metadata is attacker input, so each class of malformed or hostile value is refused with a
// MetadataError naming the field, and the walk over an image's manifests is bounded.
import { symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BundleMetadata, ImageRecord } from '../../src/bundle/format.js';
import { MetadataError, parseMetadata } from '../../src/bundle/metadata.js';
import { judgeImage } from '../../src/bundle/open/judge.js';
import type { BlobSeen } from '../../src/bundle/open/blob-check.js';
import type { ParsedManifest } from '../../src/oci/manifest.js';
import { readSmallRegularFile, SmallFileError } from '../../src/util/small-file.js';
import { jsonDepth, parseBoundedJson, JsonLimitError } from '../../src/util/json.js';
import { printable } from '../../src/util/text.js';
import { tempDir } from '../helpers/cli.js';
import { imageFixture, metadataFixture } from '../helpers/metadata.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

function valid(): BundleMetadata {
  return metadataFixture(
    [
      imageFixture({
        reference: 'ghcr.io/siderolabs/installer:v1.8.0',
        registry: 'ghcr.io',
        repository: 'siderolabs/installer',
        tag: 'v1.8.0',
        digest: d('1'),
        blobs: [d('1'), d('a')],
        bytes: 20,
      }),
    ],
    {
      blobs: [
        { digest: d('a'), size: 10, mediaType: LAYER, role: 'layer' },
        { digest: d('1'), size: 10, mediaType: OCI_MANIFEST, role: 'manifest' },
      ],
    },
  );
}

const bytes = (o: unknown) => Buffer.from(JSON.stringify(o));
const withImage = (patch: Record<string, unknown>) => {
  const m = valid();
  return { ...m, images: [{ ...m.images[0]!, ...patch }] };
};

describe('metadata model', () => {
  it('accepts a valid document and returns exactly its fields', () => {
    expect(parseMetadata(bytes(valid()))).toEqual(valid());
  });

  it.each([
    ['"volumes": null', { ...valid(), volumes: null }, /"volumes" is not an object/],
    ['artifact: null', withImage({ artifact: null }), /artifact is not an object/],
    [
      'a repository with ..',
      withImage({
        reference: 'ghcr.io/library/busybox/../../evil:v1',
        repository: 'library/busybox/../../evil',
        tag: 'v1',
      }),
      /reference/,
    ],
    ['a repository that does not match its reference', withImage({ repository: 'evil' }), /do not match its reference/],
    [
      'a registry that does not match its reference',
      withImage({ registry: '../../etc' }),
      /do not match its reference/,
    ],
    ['a tag with /../', withImage({ reference: 'ghcr.io/siderolabs/installer:a/../b', tag: 'a/../b' }), /reference/],
    [
      'a reference with a control character',
      withImage({ reference: 'ghcr.io/siderolabs/installer:v1\u001b[2J' }),
      /control characters/,
    ],
    ['an 8 MB reference', withImage({ reference: `ghcr.io/${'a'.repeat(8 << 20)}:v1` }), /longer than/],
    [
      'a reference not in normalised form',
      withImage({ reference: 'ghcr.io/siderolabs/installer:v1.8.0 ' }),
      /reference/,
    ],
    [
      'an upper-case digest',
      { ...valid(), blobs: [{ ...valid().blobs[0]!, digest: `sha256:${'A'.repeat(64)}` }, valid().blobs[1]] },
      /invalid digest/,
    ],
    [
      'a size given as a string',
      { ...valid(), blobs: [{ ...valid().blobs[0]!, size: '10' }, valid().blobs[1]] },
      /invalid size/,
    ],
    [
      'a media type with a newline',
      { ...valid(), blobs: [{ ...valid().blobs[0]!, mediaType: 'application/x\n[host]' }, valid().blobs[1]] },
      /media type/,
    ],
    [
      'tool.version with an escape',
      { ...valid(), tool: { name: 'airgap-bundle', version: '1\u001b]0;pwned\u0007' } },
      /control characters/,
    ],
    ['created that is not a time', { ...valid(), created: '\u001b[2Jbundle intact' }, /created/],
    [
      'a platform with an escape',
      withImage({
        platforms: [{ platform: 'linux/\u009bamd64', digest: d('2'), mediaType: OCI_MANIFEST, carried: false }],
      }),
      /platform/,
    ],
    [
      'an image whose blobs leave out its own manifest',
      withImage({ blobs: [d('a')] }),
      /top manifest its blobs do not list/,
    ],
    ['a top manifest of another size than its blob', withImage({ size: 11 }), /size of 11/],
    [
      'a volume number past the set',
      {
        ...valid(),
        volumes: { index: 1, count: 2, set: 'f'.repeat(64) },
        blobs: [{ ...valid().blobs[0]!, volume: 3 }, valid().blobs[1]],
      },
      /volume/,
    ],
    [
      'a volume outside a volume set',
      { ...valid(), blobs: [{ ...valid().blobs[0]!, volume: 1 }, valid().blobs[1]] },
      /not a volume set/,
    ],
    [
      'a mountFrom that is not a repository',
      { ...valid(), blobs: [{ ...valid().blobs[0]!, external: true, mountFrom: '../x' }, valid().blobs[1]] },
      /mountFrom/,
    ],
  ])('refuses %s', (_name, doc, message) => {
    expect(() => parseMetadata(bytes(doc))).toThrow(MetadataError);
    expect(() => parseMetadata(bytes(doc))).toThrow(message);
  });

  it('refuses JSON nested 100,000 levels deep without parsing it', () => {
    const deep = Buffer.from(`{"format":"airgap-bundle/v1","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    expect(() => parseMetadata(deep)).toThrow(/nested deeper than/);
  });

  it('refuses more images than a bundle may hold', () => {
    const m = valid();
    const doc = { ...m, images: Array.from({ length: 20_001 }, () => m.images[0]) };
    expect(() => parseMetadata(bytes(doc))).toThrow(/more than the limit of 20000/);
  });

  it('validates 5,000 images in linear time', () => {
    const m = valid();
    const images = Array.from({ length: 5000 }, (_, i) => ({
      ...m.images[0]!,
      reference: `ghcr.io/siderolabs/installer:v${i}`,
      tag: `v${i}`,
    }));
    const doc = bytes({ ...m, images });
    const started = performance.now();
    expect(parseMetadata(doc).images).toHaveLength(5000);
    // A guard against quadratic work, not a benchmark: 5,000 images take milliseconds.
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe('bounded JSON', () => {
  it('measures depth outside strings only', () => {
    expect(jsonDepth(Buffer.from('{"a":"[[[[[[","b":[{"c":[]}]}'))).toBe(4);
    expect(jsonDepth(Buffer.from('"\\"[[["'))).toBe(0);
  });
  it('refuses a document past the bound and parses one within it', () => {
    expect(() => parseBoundedJson(Buffer.from(`${'['.repeat(33)}${']'.repeat(33)}`))).toThrow(JsonLimitError);
    expect(parseBoundedJson(Buffer.from(`${'['.repeat(32)}${']'.repeat(32)}`))).toBeInstanceOf(Array);
  });
});

describe('printable', () => {
  it('escapes control characters visibly and bounds the length', () => {
    expect(printable('a\u001b]0;x\u0007b\nc\u009bd\u2028')).toBe('a\\x1b]0;x\\x07b\\nc\\x9bd\\u2028');
    expect(printable('x'.repeat(500), 10)).toBe(`${'x'.repeat(10)}…`);
    expect(printable('plain')).toBe('plain');
  });
});

describe('image walk', () => {
  const image = (blobs: string[], mediaType = OCI_INDEX): ImageRecord => ({
    reference: 'r.lan/a:1',
    registry: 'r.lan',
    repository: 'a',
    tag: '1',
    digest: d('0'),
    mediaType,
    size: 1,
    platforms: [],
    absent: [],
    blobs,
    bytes: 0,
  });
  const index = (children: string[]): BlobSeen => ({
    size: 1,
    parsed: {
      kind: 'index',
      mediaType: OCI_INDEX,
      manifests: children.map((c) => ({ mediaType: OCI_INDEX, digest: c, size: 1 })),
    } as ParsedManifest,
  });

  it('walks every level of nested indexes and names damage at the bottom', () => {
    const seen = new Map<string, BlobSeen>([
      [d('0'), index([d('1')])],
      [d('1'), index([d('2')])],
      [
        d('2'),
        {
          size: 1,
          parsed: {
            kind: 'image',
            mediaType: OCI_MANIFEST,
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 1 },
            layers: [{ mediaType: LAYER, digest: d('l'), size: 1 }],
          },
        },
      ],
      [d('c'), { size: 1 }],
      [d('l'), { size: 1, damage: 'content does not match its digest' }],
    ]);
    seen.get(d('1'))!.parsed = {
      kind: 'index',
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: d('2'), size: 1 }],
    };
    const { report, structural } = judgeImage(image([d('0'), d('1'), d('2'), d('c'), d('l')]), seen, new Map());
    expect(report.status).toBe('damaged');
    expect(report.problems.join('\n')).toContain(`layer ${d('l')}`);
    expect(structural).toEqual([]);
  });

  it('refuses indexes nested past the bound, and cycles, as structural', () => {
    const chain = Array.from({ length: 12 }, (_, i) => d(i.toString(16)));
    const seen = new Map<string, BlobSeen>(
      chain.map((c, i) => [c, index(i + 1 < chain.length ? [chain[i + 1]!] : [])]),
    );
    expect(judgeImage(image(chain), seen, new Map()).structural.join('\n')).toMatch(/nests indexes more than 8 deep/);
    const cycle = new Map<string, BlobSeen>([
      [d('0'), index([d('1')])],
      [d('1'), index([d('2')])],
      [d('2'), index([d('1')])],
    ]);
    expect(judgeImage(image([d('0'), d('1'), d('2')]), cycle, new Map()).structural.join('\n')).toMatch(/cycle/);
  });

  it('refuses a blob reached but not listed for the image as structural', () => {
    const seen = new Map<string, BlobSeen>([
      [d('0'), index([d('1')])],
      [d('1'), index([])],
    ]);
    const { structural } = judgeImage(image([d('0')]), seen, new Map());
    expect(structural.join('\n')).toMatch(/does not list it/);
  });

  it('judges a child listed 1,000 times once', () => {
    const wide = {
      size: 1,
      parsed: {
        kind: 'index',
        mediaType: OCI_INDEX,
        manifests: Array.from({ length: 1000 }, () => ({ mediaType: OCI_INDEX, digest: d('1'), size: 1 })),
      },
    } as BlobSeen;
    const inner = {
      size: 1,
      parsed: {
        kind: 'index',
        mediaType: OCI_INDEX,
        manifests: Array.from({ length: 1000 }, () => ({ mediaType: OCI_MANIFEST, digest: d('2'), size: 1 })),
      },
    } as BlobSeen;
    const seen = new Map<string, BlobSeen>([
      [d('0'), wide],
      [d('1'), inner],
      [
        d('2'),
        {
          size: 1,
          parsed: {
            kind: 'image',
            mediaType: OCI_MANIFEST,
            config: { mediaType: LAYER, digest: d('c'), size: 1 },
            layers: [],
          },
        },
      ],
      [d('c'), { size: 1 }],
    ]);
    const started = performance.now();
    expect(judgeImage(image([d('0'), d('1'), d('2'), d('c')]), seen, new Map()).report.status).toBe('intact');
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('small regular files beside a bundle', () => {
  let work: { path: string; remove: () => Promise<void> };
  beforeAll(async () => {
    work = await tempDir();
  });
  afterAll(() => work.remove());

  it('reads a small file and reports none for an absent one', async () => {
    writeFileSync(join(work.path, 'ok.sha256'), 'abc\n');
    expect(await readSmallRegularFile(join(work.path, 'ok.sha256'), 4096)).toBe('abc\n');
    expect(await readSmallRegularFile(join(work.path, 'none.sha256'), 4096)).toBeUndefined();
  });

  it.each([
    ['a link to /dev/zero', (p: string) => symlinkSync('/dev/zero', p), /not a regular file \(a device\)/],
    ['a folder', (p: string) => mkdirSync(p), /not a regular file \(a folder\)/],
    ['a large file', (p: string) => writeFileSync(p, Buffer.alloc(10_000)), /more than the 4096 bytes/],
  ])('refuses %s without blocking', async (name, make, message) => {
    const path = join(work.path, `${name.replace(/\W/g, '_')}.sha256`);
    make(path);
    await expect(readSmallRegularFile(path, 4096)).rejects.toThrow(SmallFileError);
    await expect(readSmallRegularFile(path, 4096)).rejects.toThrow(message);
  });
});
