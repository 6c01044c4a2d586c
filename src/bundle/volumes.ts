import { basename, dirname, join } from 'node:path';
import { buildIndex } from './layout-index.js';
import { BLOCK } from '../tar/entries.js';
import type { BlobPart, BlobRecord, BundleMetadata } from './format.js';
import { UserInputError } from '../util/user-input.js';

/** FAT32 keeps files under 4 GiB. */
export const FAT32_MAX = 4 * 1024 ** 3 - 1;
/** Volume names have three digits; the size estimate of the metadata assumes no wider numbers. */
export const MAX_VOLUMES = 999;

export class VolumeError extends UserInputError {
  override name = 'VolumeError';
}

/** `4G`, `700M`, `1.5G`, `123456` (bytes), or `fat32`. Binary multiples, as disk tools use them. */
export function parseVolumeSize(text: string): number {
  if (text.trim().toLowerCase() === 'fat32') return FAT32_MAX;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m)
    throw new VolumeError(`invalid --volume-size "${text}": use a number with K, M, G or T (e.g. 700M, 4G) or "fat32"`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.floor(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

/** `talos.tar` → `talos.vol002.tar` */
export function volumeName(output: string, index: number): string {
  const base = basename(output).replace(/\.tar$/, '');
  return join(dirname(output), `${base}.vol${String(index).padStart(3, '0')}.tar`);
}

/** Parts are always named by sha256. */
const PART_DIGEST_PROBE = `sha256:${'f'.repeat(64)}`;
const entryBytes = (size: number) => BLOCK + Math.ceil(size / BLOCK) * BLOCK;
const isPacked = (b: BlobRecord) => !b.external && (b.role === 'layer' || b.role === 'config');

/**
 * What every volume holds besides its configs and layers: metadata (estimated
 * with the widest numbers and digests it can hold), a signature, the layout
 * files, every manifest, folder entries and the end-of-archive blocks.
 */
function fixedBytes(metadata: BundleMetadata, blobs: BlobRecord[]): number {
  const probe: BundleMetadata = {
    ...metadata,
    volumes: { index: MAX_VOLUMES, count: MAX_VOLUMES, set: 'f'.repeat(64) },
    blobs: blobs.map((b) => {
      if (b.parts)
        return { ...b, parts: b.parts.map((p) => ({ ...p, digest: PART_DIGEST_PROBE, volume: MAX_VOLUMES })) };
      return isPacked(b) ? { ...b, volume: MAX_VOLUMES } : b;
    }),
  };
  return (
    entryBytes(Buffer.byteLength(`${JSON.stringify(probe, null, 2)}\n`)) +
    entryBytes(2048) +
    entryBytes(31) +
    entryBytes(buildIndex(metadata.images).length) +
    3 * BLOCK +
    metadata.blobs
      .filter((b) => b.role === 'manifest' || b.role === 'index')
      .reduce((s, b) => s + entryBytes(b.size), 0) +
    2 * BLOCK
  );
}

/**
 * Packs configs and layers, in tar order, into volumes with `room` bytes for
 * them. A blob is never cut, unless it cannot fit in a volume on its own: it is
 * then cut into parts that fill the rest of the current volume and the next
 * ones. Part digests are left empty for the caller to fill in.
 */
export function layoutVolumes(blobs: BlobRecord[], room: number): { blobs: BlobRecord[]; count: number } {
  let volume = 1;
  let used = 0;
  const next = () => {
    volume++;
    used = 0;
  };
  const out = blobs.map((b): BlobRecord => {
    if (!isPacked(b)) return b;
    const cost = entryBytes(b.size);
    if (cost <= room) {
      if (used + cost > room) next();
      used += cost;
      return { ...b, volume };
    }
    // Starting a large blob on a sliver of free space only adds a part.
    if (room - used < room / 8) next();
    const parts: BlobPart[] = [];
    let left = b.size;
    while (left > 0) {
      const fit = Math.floor((room - used - BLOCK) / BLOCK) * BLOCK;
      if (fit <= 0) {
        next();
        continue;
      }
      const size = Math.min(left, fit);
      parts.push({ digest: '', size, volume });
      used += entryBytes(size);
      left -= size;
      if (left > 0) next();
    }
    const { volume: _unused, ...whole } = b;
    return { ...whole, parts };
  });
  return { blobs: out, count: volume };
}

/**
 * How configs and layers spread over volumes of at most `maxBytes`, part
 * digests left empty: pure and quick, so a size that cannot work is refused
 * before anything is downloaded.
 */
export function volumeLayout(metadata: BundleMetadata, maxBytes: number): { blobs: BlobRecord[]; count: number } {
  // More parts mean more metadata, which means less room: settle on a room that holds them.
  let fixed = fixedBytes(metadata, metadata.blobs);
  for (let round = 0; round < 16; round++) {
    const room = maxBytes - fixed;
    if (room < 4 * BLOCK)
      throw new VolumeError(
        `--volume-size ${maxBytes} bytes cannot even hold the metadata and manifests (${fixed} bytes); choose a larger size`,
      );
    const layout = layoutVolumes(metadata.blobs, room);
    if (layout.count > MAX_VOLUMES)
      throw new VolumeError(
        `--volume-size ${maxBytes} bytes would need ${layout.count} volumes (at most ${MAX_VOLUMES}); choose a larger size`,
      );
    const needed = fixedBytes(metadata, layout.blobs);
    if (needed <= fixed) return layout;
    fixed = needed;
  }
  throw new VolumeError(`cannot lay out volumes of ${maxBytes} bytes; choose a larger --volume-size`);
}

/** The metadata of one volume of a planned set. */
export function forVolume(planned: BundleMetadata, index: number): BundleMetadata {
  return { ...planned, volumes: { ...planned.volumes!, index } };
}
