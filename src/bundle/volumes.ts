import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { buildIndex } from './writer.js';
import type { BundleMetadata } from './format.js';

const BLOCK = 512;
/** FAT32 keeps files under 4 GiB. */
export const FAT32_MAX = 4 * 1024 ** 3 - 1;

export class VolumeError extends Error {
  override name = 'VolumeError';
}

/** `4G`, `700M`, `1.5G`, `123456` (bytes), or `fat32`. Binary multiples, as disk tools use them. */
export function parseVolumeSize(text: string): number {
  if (text.trim().toLowerCase() === 'fat32') return FAT32_MAX;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new VolumeError(`invalid --volume-size "${text}": use a number with K, M, G or T (e.g. 700M, 4G) or "fat32"`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.floor(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

/** `talos.tar` → `talos.vol002.tar` */
export function volumeName(output: string, index: number): string {
  const base = basename(output).replace(/\.tar$/, '');
  return join(dirname(output), `${base}.vol${String(index).padStart(3, '0')}.tar`);
}

const entryBytes = (size: number) => BLOCK + Math.ceil(size / BLOCK) * BLOCK;

/**
 * Splits a bundle into volumes of at most `maxBytes` each. Every volume is a
 * complete tar with the metadata, the layout files and every manifest (they
 * are small, and any volume can then push any image whose blobs are present);
 * configs and layers are packed in tar order, never cut. A blob larger than
 * a volume is refused: cutting one across volumes is not supported.
 */
export function planVolumes(metadata: BundleMetadata, maxBytes: number): BundleMetadata {
  // Upper bound of the per-volume overhead: metadata written with the widest numbers.
  const probe: BundleMetadata = {
    ...metadata,
    volumes: { index: 999, count: 999, set: 'f'.repeat(64) },
    blobs: metadata.blobs.map((b) => (b.role === 'layer' || b.role === 'config') && !b.external ? { ...b, volume: 999 } : b),
  };
  const fixed =
    entryBytes(Buffer.byteLength(`${JSON.stringify(probe, null, 2)}\n`)) +
    entryBytes(31) +
    entryBytes(buildIndex(metadata.images).length) +
    3 * BLOCK +
    metadata.blobs.filter((b) => b.role === 'manifest' || b.role === 'index').reduce((s, b) => s + entryBytes(b.size), 0) +
    2 * BLOCK;
  const room = maxBytes - fixed;
  if (room <= 0) throw new VolumeError(`--volume-size ${maxBytes} bytes cannot even hold the metadata and manifests (${fixed} bytes); choose a larger size`);
  let volume = 1;
  let used = 0;
  const blobs = metadata.blobs.map((b) => {
    if (b.external || (b.role !== 'layer' && b.role !== 'config')) return b;
    const cost = entryBytes(b.size);
    if (cost > room) {
      throw new VolumeError(`blob ${b.digest} (${b.size} bytes) does not fit in a volume of ${maxBytes} bytes with its metadata; choose a larger --volume-size`);
    }
    if (used + cost > room) {
      volume++;
      used = 0;
    }
    used += cost;
    return { ...b, volume };
  });
  const set = createHash('sha256').update(JSON.stringify({ ...metadata, blobs })).digest('hex');
  return { ...metadata, blobs, volumes: { index: 1, count: volume, set } };
}

/** The metadata of one volume of a planned set. */
export function forVolume(planned: BundleMetadata, index: number): BundleMetadata {
  return { ...planned, volumes: { ...planned.volumes!, index } };
}
