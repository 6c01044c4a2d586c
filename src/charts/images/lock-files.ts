/**
 * Image lock files a chart may carry at its root: `Images.lock` as the
 * Distribution Tooling for Helm (`helm dt`) writes it (`kind: ImagesLock`,
 * `images: [{name, image, digests}]`), and the names Hauler reads
 * (`images.lock`, `images-lock.yaml`, `images.lock.yaml`, `.images.lock.yaml`),
 * which hold `image:` entries in any layout. Every string under an `image` key
 * is taken, so both shapes read the same way. The per-architecture `digests`
 * of an ImagesLock are those of platform manifests, not of the index a tag
 * names, so they are not used to pin the reference.
 */
import { ChartError } from '../errors.js';
import { parseBoundedYaml } from '../yaml.js';
import type { ImageFinding } from './finding.js';
import { isMap } from './values.js';

/** The lock file names read, at the chart's root. */
export const LOCK_FILE_NAMES = [
  'Images.lock',
  'images.lock',
  'images-lock.yaml',
  'images.lock.yaml',
  '.images.lock.yaml',
] as const;

const LOCK_BOUNDS = { maxBytes: 1024 * 1024, maxNodes: 50_000, maxDepth: 16 };

export interface LockFileResult {
  findings: ImageFinding[];
  warnings: string[];
}

/** Strings under `image` keys anywhere in `node` (already bounded in depth and size where parsed). */
function imageStrings(node: unknown, out: string[]): void {
  if (Array.isArray(node)) for (const item of node) imageStrings(item, out);
  else if (isMap(node))
    for (const [key, value] of Object.entries(node)) {
      if (key === 'image' && typeof value === 'string' && value.trim() !== '') out.push(value.trim());
      else imageStrings(value, out);
    }
}

function readLock(name: string, bytes: Buffer, out: LockFileResult): void {
  let doc: unknown;
  try {
    doc = parseBoundedYaml(bytes, name, LOCK_BOUNDS);
  } catch (err) {
    if (!(err instanceof ChartError)) throw err;
    out.warnings.push(`${err.message}; not read`);
    return;
  }
  const images: string[] = [];
  imageStrings(doc, images);
  for (const image of images) out.findings.push({ image: image.replace(/^\/+/, ''), how: name });
}

/** The images the chart's own lock files list. */
export function imagesFromLockFiles(files: ReadonlyMap<string, Buffer>): LockFileResult {
  const out: LockFileResult = { findings: [], warnings: [] };
  for (const name of LOCK_FILE_NAMES) {
    const bytes = files.get(name);
    if (bytes) readLock(name, bytes, out);
  }
  return out;
}
