/**
 * `airgap-bundle serve` against a Distribution registry holding the same images: 1, 4 and 16
 * parallel pullers (skopeo copy --all of every tagged image of the bundle, each puller into its own
 * dir: folders), bytes pulled per second of wall time on each side and their ratio; the serve
 * process's peak RSS per client count (a fresh process per count, VmHWM read after its runs); and
 * the time from spawning `serve` to its first answered GET /v2/ (one sample per start).
 *
 *   npx tsx scripts/bench-serve.ts --bundle PATH [--clients 1,4,16] [--runs 3] [--json FILE] [--work DIR]
 *
 * The registry is filled with `airgap-bundle import BUNDLE --plain-http`, which names repositories
 * as serve does. Runs alternate which side goes first; the ratio is the median of each run's own
 * serve/registry ratio. Both run on this machine with the pullers, so the numbers say how the two
 * servers compare here, not what a network would carry.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readHead } from '../src/bundle/reader.js';
import { targetRepository } from '../src/reference/mapping.js';
import { run } from './lib/process.js';
import { startRegistry, type RunningRegistry } from './lib/registry.js';
import { startBenchServe, type BenchServe } from './lib/serve-bench-process.js';
import { pullInParallel, type PulledImage, type PullResult } from './lib/serve-bench-pull.js';
import { formatTarget, judge, type Target } from './bench/targets.js';

export interface ServeBenchOptions {
  bundle: string;
  /** Scratch space for the pulled copies; emptied after each run. */
  workDir: string;
  clients: number[];
  runs: number;
  /** The CLI to run (default dist/cli.js): bench.ts passes its snapshot. */
  cli?: string;
  log?: (line: string) => void;
}

export interface ServeBenchRow {
  clients: number;
  /** Bytes one run pulls, all pullers together. */
  bytes: number;
  serve: { mbPerSecond: number; seconds: number[]; peakRssMiB: number; cpuSeconds: number };
  registry: { mbPerSecond: number; seconds: number[] };
  /** serve MB/s over registry MB/s: the median of the runs' own ratios, and their range. */
  ratio: number;
  ratios: number[];
}

export interface ServeBenchResult {
  bundle: string;
  bundleBytes: number;
  images: number;
  /** Spawn to first answered GET /v2/, one per serve start (ms). */
  firstResponseMs: number[];
  /** Of which serve's own start-up (bundle opened to listening), as it reports it (ms). */
  loadMs: number[];
  rows: ServeBenchRow[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** The tagged images of the bundle, named as serve and import name them by default. */
async function imagesOf(bundle: string): Promise<PulledImage[]> {
  const { metadata } = await readHead(bundle);
  return metadata.images
    .filter((i) => i.tag !== undefined)
    .map((i) => ({ repository: targetRepository(i, { keepRegistryHost: false }), tag: i.tag!, digest: i.digest }));
}

async function filledRegistry(cli: string, bundle: string): Promise<RunningRegistry> {
  const registry = await startRegistry();
  try {
    await run(process.execPath, [cli, 'import', bundle, '--registry', registry.host, '--plain-http', '-q']);
    return registry;
  } catch (err) {
    await registry.stop();
    throw err;
  }
}

/** All runs at one client count, against one fresh serve process and the shared registry. */
async function measureClients(
  opts: Required<Omit<ServeBenchOptions, 'log'>> & { log: (l: string) => void },
  images: PulledImage[],
  registry: RunningRegistry,
  starts: Array<{ firstResponseMs: number; loadMs: number }>,
  clients: number,
): Promise<ServeBenchRow> {
  const serve: BenchServe = await startBenchServe(opts.cli, opts.bundle);
  starts.push({ firstResponseMs: serve.firstResponseMs, loadMs: serve.loadMs });
  const sides: Record<'serve' | 'registry', PullResult[]> = { serve: [], registry: [] };
  try {
    for (let r = 0; r < opts.runs; r++) {
      const order: Array<'serve' | 'registry'> = r % 2 === 0 ? ['serve', 'registry'] : ['registry', 'serve'];
      for (const side of order) {
        const host = side === 'serve' ? serve.host : registry.host;
        const got = await pullInParallel(host, images, clients, join(opts.workDir, `pull-${side}`));
        sides[side].push(got);
        opts.log(`${clients} puller(s), run ${r + 1}, ${side}: ${(got.bytes / 1e6 / got.seconds).toFixed(1)} MB/s`);
      }
    }
    const rate = (s: PullResult) => s.bytes / 1e6 / s.seconds;
    const ratios = sides.serve.map((s, i) => rate(s) / rate(sides.registry[i]!));
    return {
      clients,
      bytes: sides.serve[0]!.bytes,
      serve: {
        mbPerSecond: round(median(sides.serve.map(rate)), 1),
        seconds: sides.serve.map((s) => round(s.seconds, 3)),
        peakRssMiB: round(serve.peakRssMiB(), 1),
        cpuSeconds: round(serve.cpuSeconds()),
      },
      registry: {
        mbPerSecond: round(median(sides.registry.map(rate)), 1),
        seconds: sides.registry.map((s) => round(s.seconds, 3)),
      },
      ratio: round(median(ratios)),
      ratios: ratios.map((x) => round(x)),
    };
  } finally {
    await serve.stop();
  }
}

export async function benchServe(opts: ServeBenchOptions): Promise<ServeBenchResult> {
  const full = {
    ...opts,
    cli: opts.cli ?? resolve(import.meta.dirname, '..', 'dist', 'cli.js'),
    log: opts.log ?? ((l: string) => process.stderr.write(`[bench-serve] ${l}\n`)),
  };
  if (!existsSync(full.cli)) throw new Error(`${full.cli} is missing: run \`npm run build\` first`);
  const images = await imagesOf(opts.bundle);
  if (images.length === 0) throw new Error(`${opts.bundle} holds no tagged image to pull`);
  await mkdir(opts.workDir, { recursive: true });
  full.log(`importing ${opts.bundle} into a Distribution registry`);
  const registry = await filledRegistry(full.cli, opts.bundle);
  const starts: Array<{ firstResponseMs: number; loadMs: number }> = [];
  const rows: ServeBenchRow[] = [];
  try {
    for (const n of opts.clients) rows.push(await measureClients(full, images, registry, starts, n));
  } finally {
    await registry.stop();
    await rm(opts.workDir, { recursive: true, force: true });
  }
  return {
    bundle: opts.bundle,
    bundleBytes: statSync(opts.bundle).size,
    images: images.length,
    firstResponseMs: starts.map((s) => round(s.firstResponseMs, 1)),
    loadMs: starts.map((s) => s.loadMs),
    rows,
  };
}

export function formatServeTable(result: ServeBenchResult): string {
  const lines = [
    `serve vs Distribution: ${result.images} images, bundle ${(result.bundleBytes / 1e6).toFixed(1)} MB`,
    'pullers | bytes/run | serve MB/s | registry MB/s | ratio (range)      | serve peak RSS',
    '--------|-----------|------------|---------------|--------------------|---------------',
  ];
  for (const r of result.rows) {
    const range = `${Math.min(...r.ratios).toFixed(2)}–${Math.max(...r.ratios).toFixed(2)}`;
    lines.push(
      `${String(r.clients).padStart(7)} | ${`${(r.bytes / 1e6).toFixed(1)} MB`.padStart(9)} | ${r.serve.mbPerSecond
        .toFixed(1)
        .padStart(
          10,
        )} | ${r.registry.mbPerSecond.toFixed(1).padStart(13)} | ${`${r.ratio.toFixed(2)}x (${range})`.padEnd(
        18,
      )} | ${r.serve.peakRssMiB.toFixed(1)} MiB`,
    );
  }
  const first = result.firstResponseMs;
  lines.push(
    `first answered GET /v2/ after spawning serve: median ${median(first).toFixed(0)} ms, max ${Math.max(...first).toFixed(0)} ms (${first.length} starts; serve's own start-up, bundle opened to listening: median ${median(result.loadMs)} ms)`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * The targets for serve, each judged met or missed: at least level with Distribution at every
 * puller count (both serve the same images on the same machine, so level is what it can judge),
 * memory bounded at the most pullers, and a quick first answer.
 */
export function serveTargets(result: ServeBenchResult): Target[] {
  const most = result.rows.reduce<ServeBenchRow | undefined>(
    (m, r) => (!m || r.clients > m.clients ? r : m),
    undefined,
  );
  return [
    ...result.rows.map((r): Target => ({
      name: `serve throughput >= 1.0x Distribution at ${r.clients} puller(s)`,
      measured: r.ratio,
      limit: 1,
      kind: 'at-least',
      unit: 'x',
    })),
    {
      name: `serve peak RSS under 150 MiB at ${most?.clients ?? '?'} pullers`,
      measured: most?.serve.peakRssMiB ?? NaN,
      limit: 150,
      kind: 'under',
      unit: 'MiB',
    },
    {
      name: `serve answers its first request within 1 s (slowest start, ${(result.bundleBytes / 2 ** 30).toFixed(2)} GiB bundle)`,
      measured: Math.max(...result.firstResponseMs),
      limit: 1000,
      kind: 'under',
      unit: 'ms',
    },
  ];
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(args: string[]): Promise<void> {
  const bundle = argValue(args, '--bundle');
  const clients = (argValue(args, '--clients') ?? '1,4,16').split(',').map(Number);
  const runs = Number(argValue(args, '--runs') ?? '3');
  if (!bundle || clients.some((n) => !(n >= 1)) || !(runs >= 1)) {
    process.stderr.write(
      'usage: tsx scripts/bench-serve.ts --bundle PATH [--clients 1,4,16] [--runs 3] [--json FILE] [--work DIR]\n',
    );
    process.exit(2);
  }
  const workDir = resolve(argValue(args, '--work') ?? join(resolve(import.meta.dirname, '..'), '.bench', 'serve-work'));
  const result = await benchServe({ bundle: resolve(bundle), workDir, clients, runs });
  process.stdout.write(formatServeTable(result));
  for (const t of serveTargets(result)) process.stdout.write(`${formatTarget(judge(t))}\n`);
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const jsonFile = argValue(args, '--json');
  if (jsonFile) await writeFile(resolve(jsonFile), json);
  else process.stdout.write(json);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`bench-serve: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
