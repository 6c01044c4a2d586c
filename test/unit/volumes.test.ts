import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobRecord, BundleMetadata } from '../../src/bundle/format.js';
import { MetadataError, parseMetadata } from '../../src/bundle/metadata.js';
import { blobEntries } from '../../src/bundle/volume-content.js';
import { FAT32_MAX, layoutVolumes, parseVolumeSize, VolumeError } from '../../src/bundle/volumes.js';
import { planVolumes } from '../../src/export/volume-plan.js';
import { tempDir } from '../helpers/cli.js';
import { imageFixture, metadataFixture } from '../helpers/metadata.js';
import { sha256Digest } from '../../scripts/lib/digest.js';

const sha = sha256Digest;
const entryBytes = (size: number) => 512 + Math.ceil(size / 512) * 512;

function bundle(blobs: BlobRecord[]): BundleMetadata {
  const manifest = blobs.find((b) => b.role === 'manifest')!;
  return metadataFixture(
    [
      imageFixture({
        reference: 'r.lan/a:1',
        registry: 'r.lan',
        repository: 'a',
        tag: '1',
        digest: manifest.digest,
        mediaType: manifest.mediaType,
        size: manifest.size,
        blobs: blobs.map((b) => b.digest),
      }),
    ],
    { blobs },
  );
}

let work: { path: string; remove: () => Promise<void> };
const files = new Map<string, string>();
/** A layer of random bytes on disk, as the blob cache holds it. */
function layer(size: number): BlobRecord {
  const bytes = randomBytes(size);
  const digest = sha(bytes);
  const file = join(work.path, digest.slice(7));
  writeFileSync(file, bytes);
  files.set(digest, file);
  return { digest, size, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', role: 'layer' };
}
const manifestRecord = (): BlobRecord => ({
  digest: sha(Buffer.from('m')),
  size: 400,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  role: 'manifest',
});

beforeAll(async () => {
  work = await tempDir();
});
afterAll(async () => {
  await work?.remove();
});

describe('volume size', () => {
  it.each([
    ['fat32', FAT32_MAX],
    ['700M', 700 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['4GiB', 4 * 1024 ** 3],
    ['123456', 123456],
  ])('parses %s', (text, bytes) => {
    expect(parseVolumeSize(text)).toBe(bytes);
  });
  it('refuses what is not a size', () => {
    expect(() => parseVolumeSize('big')).toThrow(VolumeError);
  });
});

describe('volume layout', () => {
  const rec = (c: string, size: number): BlobRecord => ({
    digest: `sha256:${c.repeat(64)}`,
    size,
    mediaType: 'x',
    role: 'layer',
  });

  it('packs whole blobs in order and never cuts one that fits a volume', () => {
    const { blobs, count } = layoutVolumes([rec('a', 4000), rec('b', 4000), rec('c', 4000)], 10 * 1024);
    expect(blobs.map((b) => b.volume)).toEqual([1, 1, 2]);
    expect(count).toBe(2);
    expect(blobs.every((b) => b.parts === undefined)).toBe(true);
  });

  it('cuts a blob larger than a volume into parts that fill the volumes, in order', () => {
    const room = 10 * 1024;
    const { blobs, count } = layoutVolumes([rec('a', 3000), rec('b', 22_000), rec('c', 1000)], room);
    const [a, b, c] = blobs;
    expect(a!.volume).toBe(1);
    expect(b!.volume).toBeUndefined();
    const parts = b!.parts!;
    expect(parts.reduce((s, p) => s + p.size, 0)).toBe(22_000);
    expect(parts.map((p) => p.volume)).toEqual(parts.map((_, i) => i + 1));
    // The first part fills what volume 1 has left after blob a.
    expect(entryBytes(3000) + entryBytes(parts[0]!.size)).toBeLessThanOrEqual(room);
    expect(room - entryBytes(3000) - entryBytes(parts[0]!.size)).toBeLessThan(512);
    // Every volume stays within its room, the last part shares its volume with blob c.
    const used = new Map<number, number>();
    for (const p of parts) used.set(p.volume, (used.get(p.volume) ?? 0) + entryBytes(p.size));
    used.set(1, used.get(1)! + entryBytes(3000));
    used.set(c!.volume!, (used.get(c!.volume!) ?? 0) + entryBytes(1000));
    for (const u of used.values()) expect(u).toBeLessThanOrEqual(room);
    expect(c!.volume).toBe(parts.at(-1)!.volume);
    expect(count).toBe(c!.volume);
  });

  it('starts a large blob in a fresh volume rather than on a sliver of free space', () => {
    const { blobs } = layoutVolumes([rec('a', 9500), rec('b', 25_000)], 10 * 1024);
    expect(blobs[1]!.parts![0]!.volume).toBe(2);
  });
});

describe('volume plan', () => {
  it('hashes every part from the blob, and the parts put together are the blob', async () => {
    const big = layer(300_000);
    const small = layer(20_000);
    const planned = await planVolumes(bundle([small, big, manifestRecord()]), 64 * 1024, (d) => files.get(d)!);
    const record = planned.blobs.find((b) => b.digest === big.digest)!;
    expect(record.parts!.length).toBeGreaterThan(4);
    const bytes = readFileSync(files.get(big.digest)!);
    let offset = 0;
    for (const p of record.parts!) {
      expect(p.digest).toBe(sha(bytes.subarray(offset, offset + p.size)));
      offset += p.size;
    }
    expect(offset).toBe(bytes.length);
    // Each volume names every part it carries once, and the metadata round-trips through the reader's checks.
    const all = [];
    for (let v = 1; v <= planned.volumes!.count; v++) {
      const metadata = { ...planned, volumes: { ...planned.volumes!, index: v } };
      expect(() => parseMetadata(Buffer.from(JSON.stringify(metadata)))).not.toThrow();
      all.push(...blobEntries(metadata).filter((e) => e.of === big.digest));
    }
    expect(all.map((e) => e.digest)).toEqual(record.parts!.map((p) => p.digest));
    expect(all.map((e) => e.offset)).toEqual(
      record.parts!.map((_, i) => record.parts!.slice(0, i).reduce((s, p) => s + p.size, 0)),
    );
  });

  it('refuses a size that cannot hold the metadata and manifests, or needs too many volumes', async () => {
    const m = bundle([layer(1000), manifestRecord()]);
    await expect(planVolumes(m, 2048, (d) => files.get(d)!)).rejects.toThrow(/cannot even hold the metadata/);
    const huge = bundle([
      { digest: `sha256:${'e'.repeat(64)}`, size: 10 * 1024 ** 3, mediaType: 'x', role: 'layer' },
      manifestRecord(),
    ]);
    await expect(planVolumes(huge, 1024 * 1024, () => '/nonexistent')).rejects.toThrow(/would need \d+ volumes/);
  });

  it('the reader refuses parts that do not add up, or parts outside a volume set', async () => {
    const big = layer(200_000);
    const planned = await planVolumes(bundle([big, manifestRecord()]), 64 * 1024, (d) => files.get(d)!);
    const broken = structuredClone(planned);
    broken.blobs.find((b) => b.parts)!.parts![0]!.size += 1;
    expect(() => parseMetadata(Buffer.from(JSON.stringify(broken)))).toThrow(/add up to/);
    const { volumes: _v, ...single } = planned;
    expect(() => parseMetadata(Buffer.from(JSON.stringify(single)))).toThrow(MetadataError);
  });
});
