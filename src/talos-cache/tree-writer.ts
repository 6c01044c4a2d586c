import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFile } from './file-writer.js';
import type { CachePlan, TreeFile } from './plan.js';
import type { BundleSource } from './source.js';

/**
 * The `flat` layout: the tree itself, written under `root` (a temporary folder
 * the caller renames when this returns). Folders 0755, files 0644 whatever the
 * umask. A few files are written at once, so one file's wait for the disk
 * overlaps the next one's reading and hashing; the first failure stops the rest.
 */
const FILES_IN_FLIGHT = 3;

export async function writeTree(
  root: string,
  plan: CachePlan,
  source: BundleSource,
  onBytes: (n: number) => void,
): Promise<void> {
  for (const dir of ['', ...plan.directories]) {
    await mkdir(join(root, dir), { mode: 0o755 });
    await chmod(join(root, dir), 0o755);
  }
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < plan.files.length) {
      const f = plan.files[next++]!;
      try {
        await writeFile(join(root, f.path), chunksOf(f, source), { onBytes });
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const workers = Array.from({ length: Math.min(FILES_IN_FLIGHT, plan.files.length) }, worker);
  const results = await Promise.allSettled(workers);
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
}

async function* chunksOf(f: TreeFile, source: BundleSource): AsyncGenerator<Buffer> {
  if ('bytes' in f) yield f.bytes;
  else yield* source.blob(f.blob);
}
