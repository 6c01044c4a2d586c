/**
 * `talos-cache` next to GNU tar extracting the same bundle, with peak memory.
 *
 *   npm run build && npx tsx scripts/bench-talos-cache.ts [BUNDLE.tar] [--runs 5] [--layout oci|flat] [--size 1G] [--cli PATH]
 *
 * Both write about the bundle's bytes to disk: `talos-cache` reads the bundle by
 * offset, hashes every blob and writes the cache (by default the `oci` layout:
 * one layer tar holding the tree); `tar xf` writes the same bytes out as files
 * without hashing anything. Without a bundle, the Talos-like bench image set of
 * --size is seeded into a loopback registry and exported into .bench/talos-cache/. Runs alternate which goes first, every run starts after
 * `sync`, and the outputs are removed in between. Times are medians; the ratio is
 * the median of each run's own ratio (tar's time over the tool's: above 1.0, the
 * tool is faster). The tool's files are on disk when it exits (flushed); plain
 * `tar xf` leaves them in the page cache, so a second peer flushes its files too:
 * `tar xf` + `sync` is the like-for-like peer, which the bench's target holds the
 * tool to; plain `tar xf` is information. --cli runs another build (bench.ts passes
 * its snapshot of dist/).
 * Prints table rows, then the result as JSON on the last line.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { measure, type Sample } from './lib/bench-measure.js';
import { ensureImageSet } from './lib/bench-images.js';
import { startRegistry } from './lib/registry.js';
import { seedRegistry, talosLikeList } from './lib/samples.js';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const positional = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1]!.startsWith('--')));
const runs = Number(arg('--runs', '5'));
const layout = arg('--layout', 'oci');
const cli = resolve(arg('--cli', join(root, 'dist', 'cli.js')));
const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
const sizeArg = arg('--size', '1G').toUpperCase();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const settle = () => spawnSync('sync', { stdio: 'ignore' });

async function bundlePath(): Promise<string> {
  if (positional) return resolve(positional);
  const dir = join(root, '.bench', 'talos-cache');
  const bundle = join(dir, `bench-${sizeArg}.tar`);
  if (!existsSync(bundle)) {
    const size = Number(sizeArg.replace(/[KMG]$/, '')) * (UNITS[sizeArg.slice(-1)] ?? 1);
    const set = await ensureImageSet(join(dir, `images-${sizeArg}`), size, (l) => process.stderr.write(`${l}\n`));
    const upstream = await startRegistry();
    try {
      process.stderr.write(`seeding ${set.images.length} images and exporting them into ${bundle}…\n`);
      await seedRegistry(upstream, set.images);
      const list = join(dir, 'images.txt');
      writeFileSync(list, talosLikeList(set.images, upstream.host));
      const res = spawnSync(process.execPath, [cli, 'export', '-f', list, '--plain-http', '-o', bundle, '-q'], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      if (res.status !== 0) throw new Error(`export of the bench bundle failed (${res.status})`);
    } finally {
      await upstream.stop();
    }
  }
  return bundle;
}

async function main(): Promise<void> {
  const bundle = await bundlePath();
  const work = join(root, '.bench', 'talos-cache', 'run');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const bytes = statSync(bundle).size;
  const out = join(work, 'cache');
  const extracted = join(work, 'extracted');
  spawnSync('cat', [bundle], { stdio: 'ignore' }); // both start from the page cache
  const tool = async () => {
    rmSync(out, { recursive: true, force: true });
    settle();
    const s = await measure(
      [process.execPath, cli, 'talos-cache', bundle, '-o', out, '--layout', layout, '-q'],
      join(work, 'tmp'),
    );
    rmSync(out, { recursive: true, force: true });
    return s;
  };
  // `sync` on the files extracted: tar's bytes on disk too, as the tool's are when it exits.
  const durable = `tar xf "$0" -C "$1" && find "$1" -type f -exec sync {} +`;
  const peer = async (flushed = false) => {
    rmSync(extracted, { recursive: true, force: true });
    mkdirSync(extracted);
    settle();
    const cmd = flushed ? ['sh', '-c', durable, bundle, extracted] : ['tar', 'xf', bundle, '-C', extracted];
    const s = await measure(cmd, join(work, 'tmp'));
    rmSync(extracted, { recursive: true, force: true });
    return s;
  };
  const samples: Array<{ tool: Sample; peer: Sample; durable: Sample }> = [];
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) samples.push({ tool: await tool(), peer: await peer(), durable: await peer(true) });
    else {
      const p = await peer();
      const d = await peer(true);
      samples.push({ tool: await tool(), peer: p, durable: d });
    }
  }
  rmSync(work, { recursive: true, force: true });
  const ratios = samples.map((s) => s.peer.seconds / s.tool.seconds);
  const durableRatios = samples.map((s) => s.durable.seconds / s.tool.seconds);
  const side = (pick: (s: { tool: Sample; peer: Sample; durable: Sample }) => Sample) => ({
    seconds: Number(median(samples.map((s) => pick(s).seconds)).toFixed(2)),
    cpuSeconds: Number(median(samples.map((s) => pick(s).cpuSeconds)).toFixed(2)),
    rssMiB: Math.round(Math.max(...samples.map((s) => pick(s).rssMiB))),
    writtenMB: Math.round(median(samples.map((s) => pick(s).writtenBytes)) / 1e6),
  });
  const result = {
    step: `talos-cache (${layout})`,
    bundle,
    bundleBytes: bytes,
    runs,
    tool: side((s) => s.tool),
    peer: { name: 'tar xf', ...side((s) => s.peer) },
    ratio: Number(median(ratios).toFixed(2)),
    ratioRange: [Number(Math.min(...ratios).toFixed(2)), Number(Math.max(...ratios).toFixed(2))],
    /** tar with its files flushed to disk, as the tool's are: the like-for-like comparison. */
    durablePeer: { name: 'tar xf + sync of the files', ...side((s) => s.durable) },
    durableRatio: Number(median(durableRatios).toFixed(2)),
  };
  const mbps = (secs: number) => `${(bytes / 1e6 / secs).toFixed(0)} MB/s`;
  process.stdout.write(
    `| talos-cache (bundle → ${layout} image cache) | ${result.tool.seconds} s, ${mbps(result.tool.seconds)} | \`tar xf\` of the bundle: ${result.peer.seconds} s, ${mbps(result.peer.seconds)} | ${result.ratio}× (${result.ratioRange[0]}–${result.ratioRange[1]}) | ${result.tool.rssMiB} / ${result.peer.rssMiB} MiB | ${result.tool.writtenMB} / ${result.peer.writtenMB} MB |\n`,
  );
  process.stdout.write(
    `| (the same, tar's files flushed to disk too) | | \`tar xf\` + \`sync\`: ${result.durablePeer.seconds} s, ${mbps(result.durablePeer.seconds)} | ${result.durableRatio}× | | |\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
