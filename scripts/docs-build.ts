/**
 * Part of `npm run build`: writes the manual beside the compiled CLI, `dist/docs/manual.json`
 * (what `airgap-bundle help` reads, see src/docs/manual.ts), and `dist/airgap-bundle-docs.html`.
 *
 *   tsx scripts/docs-build.ts
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildManual } from './docs-manual.js';

const root = resolve(import.meta.dirname, '..');

/** `content` at `path`, under a temporary name first: a reader never sees half of it. */
async function publish(path: string, content: string): Promise<void> {
  await writeFile(`${path}.partial-${process.pid}`, content);
  await rename(`${path}.partial-${process.pid}`, path);
}

async function main(): Promise<void> {
  const manual = await buildManual(root);
  await mkdir(join(root, 'dist', 'docs'), { recursive: true });
  await publish(join(root, 'dist', 'docs', 'manual.json'), `${JSON.stringify(manual)}\n`);
  await publish(join(root, 'dist', 'airgap-bundle-docs.html'), manual.html);
}

main().catch((err: unknown) => {
  process.stderr.write(`docs-build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
