import { stat, statfs } from 'node:fs/promises';
import { formatBytes } from '../util/bytes.js';

/** Every tar entry costs a header and padding; metadata and index.json come on top. */
const TAR_OVERHEAD_PER_MB = 4096;

/**
 * Refuses before the first layer is fetched when the disks clearly cannot hold
 * the work: the output folder the bundle, less what a resumed partial bundle
 * already holds, and a cache what is still to download (both on one filesystem
 * when they share one).
 */
export async function ensureSpace(
  outputDir: string,
  cacheDir: string | undefined,
  sizes: { bundleBytes: number; downloadBytes: number },
): Promise<void> {
  const bundle = sizes.bundleBytes + Math.ceil(sizes.bundleBytes / 1e6) * TAR_OVERHEAD_PER_MB + 1024 * 1024;
  const [outStat, cacheStat] = await Promise.all([
    stat(outputDir),
    cacheDir !== undefined ? stat(cacheDir) : undefined,
  ]);
  const checks = !cacheStat
    ? [
        {
          dir: outputDir,
          need: bundle - (sizes.bundleBytes - sizes.downloadBytes),
          what: `the bundle (${formatBytes(bundle)}, of which ${formatBytes(sizes.downloadBytes)} still to download)`,
        },
      ]
    : outStat.dev === cacheStat.dev
      ? [
          {
            dir: outputDir,
            need: bundle + sizes.downloadBytes,
            what: `the bundle (${formatBytes(bundle)}) and the blobs still to download into the cache (${formatBytes(sizes.downloadBytes)})`,
          },
        ]
      : [
          { dir: outputDir, need: bundle, what: `the bundle (${formatBytes(bundle)})` },
          {
            dir: cacheDir!,
            need: sizes.downloadBytes,
            what: `the blobs still to download (${formatBytes(sizes.downloadBytes)})`,
          },
        ];
  for (const c of checks) {
    const st = await statfs(c.dir);
    const free = st.bavail * st.bsize;
    if (free < c.need) {
      throw new Error(
        `not enough space in ${c.dir}: ${c.what} need ${formatBytes(c.need)}, ${formatBytes(free)} free; free some space, or choose another -o folder${cacheDir !== undefined ? ' or --cache-dir' : ''}`,
      );
    }
  }
}
