/**
 * Verify throughput next to sha256sum on the same file, with peak memory.
 *
 *   npm run build && npx tsx scripts/bench-verify.ts [--size 1G] [--runs 3]
 *
 * Builds a synthetic bundle of --size in .bench/ (random layers), then runs, in
 * alternation, `airgap-bundle verify` and `sha256sum` over it, reporting the median
 * of --runs. Peak RSS comes from GNU time (/usr/bin/time -v). The file is read
 * once before measuring so both tools start from the page cache.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeSyntheticBundle } from './lib/synthetic-bundle.js';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
const sizeArg = arg('--size', '1G').toUpperCase();
const size = Number(sizeArg.replace(/[KMG]$/, '')) * (UNITS[sizeArg.slice(-1)] ?? 1);
const runs = Number(arg('--runs', '3'));

interface Sample {
  seconds: number;
  rssMiB: number;
}

/** Runs a command under GNU time, returning wall seconds and peak RSS. */
function measure(cmd: string[]): Sample {
  const res = spawnSync('/usr/bin/time', ['-f', '%e %M', ...cmd], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const line = res.stderr.trim().split('\n').pop() ?? '';
  const [secs, kb] = line.split(' ').map(Number);
  if (res.status !== 0 || secs === undefined || kb === undefined)
    throw new Error(`${cmd.join(' ')} failed: ${res.stderr}`);
  return { seconds: secs, rssMiB: kb / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = join(root, '.bench', 'verify');
  const bundle = join(dir, `synthetic-${sizeArg}.tar`);
  if (!existsSync(bundle)) {
    process.stderr.write(`building a ${sizeArg} synthetic bundle in ${dir}…\n`);
    await writeSyntheticBundle(dir, bundle, size);
  }
  const bytes = statSync(bundle).size;
  readFileSync(`${bundle}.sha256`);
  spawnSync('cat', [bundle], { stdio: ['ignore', 'ignore', 'ignore'] });
  const tool: Sample[] = [];
  const peer: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    tool.push(measure([process.execPath, join(root, 'dist', 'cli.js'), 'verify', bundle, '--quiet']));
    peer.push(measure(['sha256sum', bundle]));
  }
  const mb = bytes / 1e6;
  const rows = [
    {
      name: 'airgap-bundle verify',
      seconds: median(tool.map((s) => s.seconds)),
      rssMiB: Math.max(...tool.map((s) => s.rssMiB)),
    },
    { name: 'sha256sum', seconds: median(peer.map((s) => s.seconds)), rssMiB: Math.max(...peer.map((s) => s.rssMiB)) },
  ];
  const result = {
    bundleBytes: bytes,
    runs,
    rows: rows.map((r) => ({ ...r, mbPerSecond: Number((mb / r.seconds).toFixed(1)) })),
    ratio: Number((rows[1]!.seconds / rows[0]!.seconds).toFixed(2)),
  };
  process.stdout.write(`bundle ${(bytes / 1024 ** 3).toFixed(2)} GiB, median of ${runs} runs\n`);
  for (const r of result.rows)
    process.stdout.write(
      `${r.name.padEnd(22)} ${r.seconds.toFixed(2).padStart(7)} s ${String(r.mbPerSecond).padStart(8)} MB/s  peak RSS ${r.rssMiB.toFixed(0)} MiB\n`,
    );
  process.stdout.write(`verify throughput / sha256sum throughput: ${result.ratio}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-verify failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
