/**
 * The whole seed flow on loopback, with sample images:
 *   sample images → upstream registry (seeded by skopeo) → export → verify →
 *   import into a second registry → registry verification → Talos mirror patch.
 *
 * Run with `npm run demo`. Everything lives in .demo/ and the registries stop
 * at the end.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startRegistry, type RunningRegistry } from './lib/registry.js';
import { generateSampleImages, seedRegistry } from './lib/samples.js';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli.js');
const demo = join(root, '.demo');

function step(title: string): void {
  process.stdout.write(`\n\u001b[1m== ${title}\u001b[0m\n`);
}

function run(args: string[]): Promise<void> {
  process.stdout.write(`$ airgap-bundle ${args.join(' ')}\n`);
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: 'inherit' });
    child.on('close', (code) => (code === 0 ? ok() : fail(new Error(`airgap-bundle ${args[0]} exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  await rm(demo, { recursive: true, force: true });
  await mkdir(demo, { recursive: true });
  const running: RunningRegistry[] = [];
  try {
    step('1. sample images into an "upstream" registry (seeded with skopeo)');
    const upstream = await startRegistry();
    running.push(upstream);
    const images = await generateSampleImages(join(demo, 'samples'));
    await seedRegistry(upstream, images);
    process.stdout.write(
      `upstream registry on ${upstream.url} holds ${images.length} images (OCI indexes, Docker manifest lists, single-arch)\n`,
    );

    step('2. the image list, as `talosctl images` prints it');
    const list = join(demo, 'talos.images');
    await writeFile(list, `${images.map((i) => i.upstream).join('\n')}\n`);
    process.stdout.write(`${images.map((i) => `  ${i.upstream}`).join('\n')}\n`);

    step('3. export (connected side): every registry is reached through the loopback mirror');
    const bundle = join(demo, 'talos-demo.tar');
    await run(['export', '-f', list, '-o', bundle, '--registry-mirror', `*=${upstream.url}`]);

    step('4. inspect and verify the bundle, offline');
    await run(['inspect', bundle]);
    await run(['verify', bundle]);

    step('5. import (isolated side) into an empty registry, then prove it serves every image');
    const isolated = await startRegistry();
    running.push(isolated);
    await run(['import', bundle, '--registry', isolated.host, '--plain-http']);

    step('6. a second import finds everything in place and reads only the metadata');
    await run(['import', bundle, '--registry', isolated.host, '--plain-http', '--quiet', '--skip-verify']);
    await run(['verify', bundle, '--registry', isolated.host, '--plain-http', '--deep']);
    process.stdout.write(`\ndemo complete: bundle ${bundle}\n`);
  } finally {
    for (const r of running) await r.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
