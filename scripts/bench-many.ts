/**
 * Thousands of small images: how each step scales with the image count, not the bytes.
 *
 *   npm run bench -- --many 3000 [--runs N] [--baseline OLD/dist/cli.js] [--no-peer] [--signed] [--json FILE]
 *   npx tsx scripts/bench-many.ts --many 3000
 *
 * N images (a shared base layer, one unique layer each, 30 % two-platform indexes) are written
 * straight into an upstream Distribution registry's storage (scripts/lib/many-images.ts), then,
 * --runs times each (default 1): export, import into an empty registry, the no-op re-import,
 * verify --registry, verify offline and inspect; every registry sits behind a counting proxy, so
 * each step reports wall time, ms per image, registry requests per image and peak RSS (GNU time),
 * the medians over the runs. `skopeo sync` (one process, a YAML source list of the same images,
 * dir: folders) runs export and import next to it, once; `--baseline` runs every step with another
 * build of the tool (an older dist/) in each run, the two builds taking turns to go first, and the
 * ratio of each step is the median of the runs' own ratios, with their range: on a shared machine
 * one run cannot tell a few per cent from the drift of the hour. Every import ends with a check that
 * the registry serves every image's tag with its digest. JSON goes to --json (default
 * .bench/many-N.json). `--signed` signs every image (a cosign `.sig` each, one key) and measures
 * export and the no-op import again with `--verify-signatures` and a policy holding that key: the
 * difference is what checking the signatures costs.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { startRegistry, type RunningRegistry } from './lib/registry.js';
import { writeManySet, type ManySet } from './lib/many-images.js';
import { startCountingProxy, type CountingProxy } from './lib/many-proxy.js';
import { emptyDir, expectServed, measured, skopeoSync, writeLists, type StepResult } from './lib/many-steps.js';
import { run } from './lib/process.js';

const root = resolve(import.meta.dirname, '..');
const benchDir = join(root, '.bench');
const log = (line: string) => process.stderr.write(`[bench-many ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

type StepId = 'export' | 'export-signed' | 'import' | 'noop' | 'noop-signed' | 'verify-registry' | 'verify' | 'inspect';
const STEPS: Record<StepId, string> = {
  export: 'export',
  'export-signed': 'export --verify-signatures',
  import: 'import (empty registry)',
  noop: 're-import (no-op)',
  'noop-signed': 're-import --verify-signatures',
  'verify-registry': 'verify --registry',
  verify: 'verify (offline)',
  inspect: 'inspect',
};
type Results = Partial<Record<StepId, StepResult>>;

interface Options {
  count: number;
  runs: number;
  baseline?: string;
  peer: boolean;
  json: string;
  /** Every image signed (a cosign .sig each), and export and the no-op import measured with a policy too. */
  signed: boolean;
}

function parseArgs(args: string[]): Options {
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const count = Number(arg('--many'));
  const runs = Number(arg('--runs') ?? 1);
  if (!Number.isInteger(count) || count < 1 || count > 100_000 || !Number.isInteger(runs) || runs < 1 || runs > 20) {
    process.stderr.write(
      'usage: --many N (1..100000) [--runs N (1..20)] [--baseline OLD/dist/cli.js] [--no-peer] [--signed] [--json FILE]\n',
    );
    process.exit(2);
  }
  const baseline = arg('--baseline');
  return {
    count,
    runs,
    ...(baseline ? { baseline: resolve(baseline) } : {}),
    peer: !args.includes('--no-peer'),
    signed: args.includes('--signed'),
    json: resolve(arg('--json') ?? join(benchDir, `many-${count}.json`)),
  };
}

/** dist/ copied aside, so a rebuild during the run does not change what is measured. */
function snapshotTool(): string {
  if (!existsSync(join(root, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: run `npm run build` first');
  const dir = join(benchDir, 'tool-many');
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  return join(dir, 'dist', 'cli.js');
}

interface Upstream {
  registry: RunningRegistry;
  proxy: CountingProxy;
  set: ManySet;
  list: string;
  yaml: string;
  /** With --signed: the policy (a publicKey rule for every image) the signed steps check against. */
  policy?: string;
}

/** Every step with one build of the tool; `fresh` gives an empty registry behind a counting proxy. */
async function toolSteps(cli: string, up: Upstream, work: string, fresh: () => Promise<CountingProxy>) {
  const tmp = join(work, 'tmp');
  const bundle = join(work, 'bundle.tar');
  const node = (...a: string[]) => [process.execPath, cli, ...a];
  const r: Results = {};
  await rm(bundle, { force: true });
  const exportCmd = node('export', '-f', up.list, '-o', bundle, '--plain-http', '-q');
  if (up.policy) {
    r['export-signed'] = await measured([...exportCmd, '--verify-signatures', up.policy], tmp, up.proxy);
    await rm(bundle, { force: true });
  }
  r.export = await measured(exportCmd, tmp, up.proxy);
  const dest = await fresh();
  const importCmd = node('import', bundle, '--registry', dest.host, '--plain-http', '-q', '--skip-verify');
  r.import = await measured(importCmd, tmp, dest);
  await expectServed(dest.host, up.set.images, 'import');
  r.noop = await measured(importCmd, tmp, dest);
  await expectServed(dest.host, up.set.images, 're-import');
  if (up.policy) r['noop-signed'] = await measured([...importCmd, '--verify-signatures', up.policy], tmp, dest);
  r['verify-registry'] = await measured(
    node('verify', bundle, '--registry', dest.host, '--plain-http', '-q'),
    tmp,
    dest,
  );
  r.verify = await measured(node('verify', bundle, '-q'), tmp);
  r.inspect = await measured(node('inspect', bundle, '--json'), tmp);
  await rm(bundle, { force: true });
  return r;
}

async function peerSteps(up: Upstream, work: string, fresh: () => Promise<CountingProxy>): Promise<Results> {
  const tmp = join(work, 'tmp');
  const dir = join(work, 'skopeo');
  await emptyDir(dir);
  const r: Results = {};
  r.export = await measured(skopeoSync.export(up.yaml, dir), tmp, up.proxy);
  const dest = await fresh();
  r.import = await measured(skopeoSync.import(dir, dest.host), tmp, dest);
  await expectServed(dest.host, up.set.images, 'skopeo sync');
  r.noop = await measured(skopeoSync.import(dir, dest.host), tmp, dest);
  await rm(dir, { recursive: true, force: true });
  return r;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const cli = snapshotTool();
  const loadAtStart = os.loadavg();
  const work = join(benchDir, `many-work-${opts.count}`);
  await emptyDir(work);
  const started: Array<{ stop(): Promise<void> }> = [];
  let dest: { registry: RunningRegistry; proxy: CountingProxy } | undefined;
  const fresh = async () => {
    await dest?.proxy.stop();
    await dest?.registry.stop();
    const registry = await startRegistry();
    dest = { registry, proxy: await startCountingProxy(registry.host) };
    return dest.proxy;
  };
  try {
    const registry = await startRegistry();
    started.push(registry);
    const proxy = await startCountingProxy(registry.host);
    started.push(proxy);
    log(`writing ${opts.count} ${opts.signed ? 'signed ' : ''}images into the upstream registry's storage`);
    const keys = opts.signed ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : undefined;
    const set = await writeManySet(
      registry.storageDir,
      opts.count,
      log,
      keys ? { key: keys.privateKey, registry: proxy.host } : undefined,
    );
    const policy = keys ? await writePolicy(work, proxy.host, keys.publicKey) : undefined;
    const up: Upstream = {
      registry,
      proxy,
      set,
      ...(await writeLists(work, proxy.host, set.images)),
      ...(policy ? { policy } : {}),
    };
    await expectServed(registry.host, set.images, 'writing the set');
    const runs: Runs = { tool: [], baseline: [] };
    for (let i = 0; i < opts.runs; i++) {
      const builds: Array<[keyof Runs, string]> = [['tool', cli]];
      if (opts.baseline) builds.push(['baseline', opts.baseline]);
      if (i % 2 === 1) builds.reverse(); // taking turns to go first
      for (const [side, build] of builds) {
        log(`run ${i + 1}/${opts.runs}: the ${side === 'tool' ? 'tool' : 'baseline build'}`);
        runs[side].push(await toolSteps(build, up, work, fresh));
      }
    }
    const peer = opts.peer ? (log('skopeo sync'), await peerSteps(up, work, fresh)) : undefined;
    await report(opts, set, runs, peer, loadAtStart);
    await rm(work, { recursive: true, force: true });
  } finally {
    await dest?.proxy.stop();
    await dest?.registry.stop();
    for (const s of started.reverse()) await s.stop();
  }
}

/** A policy holding the key every image was signed with, for all of them. */
async function writePolicy(work: string, registry: string, key: KeyObject): Promise<string> {
  const pub = join(work, 'bench.pub');
  await writeFile(pub, key.export({ type: 'spki', format: 'pem' }));
  const policy = join(work, 'policy.yaml');
  await writeFile(policy, `rules:\n  - image: "${registry}/many/*"\n    publicKey: { key: bench.pub }\n`);
  return policy;
}

type Runs = { tool: Results[]; baseline: Results[] };
type Columns = { tool: Results; baseline?: Results; peer?: Results; ratios?: Partial<Record<StepId, number[]>> };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Each step's median over the runs, field by field. */
function medians(runs: Results[]): Results {
  const out: Results = {};
  for (const id of Object.keys(STEPS) as StepId[]) {
    const xs = runs.map((r) => r[id]).filter((x): x is StepResult => x !== undefined);
    if (xs.length === 0) continue;
    const m = (f: (x: StepResult) => number) => median(xs.map(f));
    out[id] = {
      seconds: m((x) => x.seconds),
      cpuSeconds: m((x) => x.cpuSeconds),
      rssMiB: m((x) => x.rssMiB),
      requests: m((x) => x.requests),
      byMethod: xs[0]!.byMethod,
    };
  }
  return out;
}

/** Baseline time over tool time, per step and run: the two ran back to back, so the hour's drift cancels. */
function pairedRatios(runs: Runs): Partial<Record<StepId, number[]>> {
  const out: Partial<Record<StepId, number[]>> = {};
  for (const id of Object.keys(STEPS) as StepId[])
    out[id] = runs.tool.flatMap((t, i) => {
      const [a, b] = [t[id], runs.baseline[i]?.[id]];
      return a && b ? [b.seconds / a.seconds] : [];
    });
  return out;
}

async function report(
  opts: Options,
  set: ManySet,
  runs: Runs,
  peer: Results | undefined,
  loadAtStart: number[],
): Promise<void> {
  const cols: Columns = {
    tool: medians(runs.tool),
    ...(runs.baseline.length > 0 ? { baseline: medians(runs.baseline), ratios: pairedRatios(runs) } : {}),
    ...(peer ? { peer } : {}),
  };
  const n = opts.count;
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    skopeo: (await run('skopeo', ['--version']).catch(() => ({ stdout: 'unknown' }))).stdout.trim(),
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg() },
  };
  const result = {
    date: new Date().toISOString(),
    images: n,
    blobs: set.blobs,
    bytes: set.bytes,
    runs: opts.runs,
    machine,
    ...cols,
    each: runs,
  };
  await mkdir(dirname(opts.json), { recursive: true });
  await writeFile(opts.json, `${JSON.stringify(result, null, 2)}\n`);
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(
    `\n${n} images, ${set.blobs} distinct blobs (${(set.bytes / 1e6).toFixed(1)} MB); ` +
      `${opts.runs === 1 ? 'one run each' : `medians of ${opts.runs} runs`}${peer && opts.runs > 1 ? ' (skopeo sync: one run)' : ''}\n` +
      `${machine.cores} cores (${machine.cpu}), node ${machine.node}, ${machine.skopeo}\n` +
      `load average ${la(loadAtStart)} at start, ${la(machine.loadAverage.atEnd)} at end\n\n`,
  );
  printTable(n, cols);
  printSignatureCost(cols.tool);
  process.stdout.write(`\nJSON: ${opts.json}\n`);
}

function printTable(n: number, cols: Columns): void {
  const all: Array<[string, Results | undefined]> = [
    ['tool', cols.tool],
    ['baseline', cols.baseline],
    ['skopeo sync', cols.peer],
  ];
  const sides = all.filter((s): s is [string, Results] => s[1] !== undefined);
  const head = ['step', ...sides.flatMap(([name]) => [`${name} s`, 'ms/img', 'req/img', 'RSS MiB'])];
  if (cols.baseline) head.push('baseline/tool');
  const cells = [head];
  for (const [id, title] of Object.entries(STEPS) as Array<[StepId, string]>) {
    const row = [title];
    for (const [, r] of sides) {
      const s = r[id];
      row.push(
        ...(s
          ? [
              s.seconds.toFixed(1),
              ((s.seconds * 1000) / n).toFixed(1),
              (s.requests / n).toFixed(2),
              s.rssMiB.toFixed(0),
            ]
          : ['-', '-', '-', '-']),
      );
    }
    if (cols.ratios) row.push(ratioCell(cols.ratios[id] ?? []));
    cells.push(row);
  }
  const widths = head.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  for (const r of cells)
    process.stdout.write(`${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}\n`);
}

/** What checking every signature adds to export and to the no-op import, and the peak memory with it. */
function printSignatureCost(r: Results): void {
  const cost = (plain: StepId, signed: StepId) => {
    const [a, b] = [r[plain], r[signed]];
    return a && b
      ? `${plain === 'export' ? 'export' : 'no-op import'} +${(((b.seconds - a.seconds) / a.seconds) * 100).toFixed(1)} % (${b.rssMiB.toFixed(0)} MiB peak)`
      : undefined;
  };
  const parts = [cost('export', 'export-signed'), cost('noop', 'noop-signed')].filter(Boolean);
  if (parts.length > 0) process.stdout.write(`\nsignature verification (one .sig per image): ${parts.join(', ')}\n`);
}

/** `1.04x`, or with several runs `1.04x (0.97-1.10)`: the median and the range of the paired ratios. */
function ratioCell(ratios: number[]): string {
  if (ratios.length === 0) return '-';
  const x = (r: number) => r.toFixed(2);
  const range = ratios.length > 1 ? ` (${x(Math.min(...ratios))}-${x(Math.max(...ratios))})` : '';
  return `${x(median(ratios))}x${range}`;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench --many failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
