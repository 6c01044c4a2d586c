// The sample image set seeded into a real upstream registry and exported into one bundle through
// a '*' mirror, as the mirror and containerd tests start from.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { runCli } from './cli.js';

export interface SampleBundle {
  upstream: RunningRegistry;
  images: SampleImage[];
  bundle: string;
}

/** Starts the upstream (the caller stops it), seeds the samples, exports them into `dir/cluster.tar`. */
export async function exportSampleBundle(dir: string, exportArgs: string[] = []): Promise<SampleBundle> {
  const upstream = await startRegistry();
  const images = await generateSampleImages(join(dir, 'samples'));
  await seedRegistry(upstream, images);
  const bundle = join(dir, 'cluster.tar');
  const list = join(dir, 'cluster.images');
  writeFileSync(list, `${images.map((i) => i.upstream).join('\n')}\n`);
  const res = await runCli([
    'export',
    '-f',
    list,
    '--registry-mirror',
    `*=${upstream.url}`,
    '-o',
    bundle,
    '-q',
    ...exportArgs,
  ]);
  if (res.code !== 0) {
    await upstream.stop();
    throw new Error(`export of the sample bundle failed (${res.code}): ${res.stderr}`);
  }
  return { upstream, images, bundle };
}
