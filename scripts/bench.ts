/**
 * End-to-end benchmark: airgap-bundle next to what a user does without it (skopeo, tar,
 * sha256sum), against real Distribution registries on loopback.
 *
 *   npm run bench                         # builds, then runs this at the defaults
 *   npx tsx scripts/bench.ts [--size 1G] [--runs 5] [--json FILE] [--scale 4] [--no-ways]
 *
 * A Talos-like image set of --size unique compressed layers (cached in .bench/images-SIZE) is
 * seeded into an upstream registry with skopeo. Then, --runs times, tool and peer alternating
 * which goes first, it measures:
 *   export     airgap-bundle export (default: no cache)  vs  skopeo copy --all --preserve-digests of
 *              every image into one oci: layout (OCI-typed) or dir: folders (Docker-typed), then tar cf;
 *              also the tool with a fresh --cache-dir (each byte written twice), against the same peer
 *   verify     airgap-bundle verify                vs  sha256sum -c on the sidecar
 *   import     airgap-bundle import, fresh registry vs skopeo copy of every image from those layouts,
 *              fresh registry; plus skopeo from oci-archive: of the bundle for its largest OCI image
 *   re-import  the same again into the registry that now holds everything (the no-op case)
 * Every step starts after `sync`, so no step pays for the writeback of the one before.
 * Medians are reported (wall time, and the process's own CPU time, which other load on the
 * machine disturbs less); the ratio is the median of each run's own ratio, tool and peer having
 * run back to back, with its range; peak RSS (GNU time) is the largest seen. Disk: bytes the process wrote
 * (kernel I/O accounting) and the peak size of its private TMPDIR. Every import ends with a
 * check that the registry serves the upstream digests; a mismatch aborts the benchmark.
 *
 *   registry ceiling  every config and layer fetched from the upstream registry with 4 parallel
 *              plain HTTP GETs (Node's client) to nowhere: what the registry serves on this
 *              machine, sharing its cores; export's throughput is reported as a share of it
 *   ceiling to disk  the same GETs, each blob into a file of its own, then the filesystem
 *              flushed (`sync -f`): the least a tool that keeps the bytes durably can take here
 *
 *   serve      on the exported bundle: skopeo pulls of every image at 1, 4 and 16 parallel pullers
 *              from `airgap-bundle serve` vs from Distribution holding the same images
 *              (scripts/bench-serve.ts), and the time to the first answer after start
 *   talos-cache on the exported bundle: the oci image cache vs `tar xf` of the bundle
 *              (scripts/bench-talos-cache.ts)
 *
 * --no-ways leaves out serve and talos-cache (the ways out of a bundle), for a quicker run of the
 * core steps.
 *
 * --many N runs the many-images benchmark instead (scripts/bench-many.ts: N small images,
 * requests and memory per image).
 *
 * --scale N adds one tool-only pass at N times the size, to show that memory does not grow with
 * the data; for the full comparison at 4 GiB run `--size 4G --runs 1` instead.
 * Results: a table on stdout and JSON in --json (default .bench/results.json).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, createReadStream, existsSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ensureImageSet, type ImageSet } from './lib/bench-images.js';
import { expectDigests, measure, total, type Sample } from './lib/bench-measure.js';
import { run } from './lib/process.js';
import { startRegistry, type RunningRegistry } from './lib/registry.js';
import { seedRegistry, talosLikeList, type SampleImage } from './lib/samples.js';
import { sha256Digest } from './lib/digest.js';
import { registryCeiling } from './lib/many-ceiling.js';
import { benchServe, formatServeTable, type ServeBenchResult } from './bench-serve.js';

const root = resolve(import.meta.dirname, '..');
const benchDir = join(root, '.bench');
const GiB = 1024 ** 3;

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: GiB };
const sizeArg = arg('--size', '1G').toUpperCase();
const sizeBytes = Math.round(Number(sizeArg.replace(/[KMG]$/, '')) * (UNITS[sizeArg.slice(-1)] ?? 1));
const runs = Number(arg('--runs', '5'));
const jsonFile = resolve(arg('--json', join(benchDir, 'results.json')));
const scale = Number(arg('--scale', '0'));
const withWays = !args.includes('--no-ways');
if (!(sizeBytes > 0) || !(runs >= 1) || !(scale >= 0)) {
  process.stderr.write('usage: tsx scripts/bench.ts [--size 1G] [--runs 5] [--json FILE] [--scale 4] [--no-ways]\n');
  process.exit(2);
}

/** GETs at once for the registry ceiling: as many as export's default --concurrency keeps in flight. */
const CEILING_PARALLEL = 4;
const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sizeLabel = (n: number) => (n % GiB === 0 ? `${n / GiB}G` : n % 1024 ** 2 === 0 ? `${n / 1024 ** 2}M` : `${n}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The CLI is copied out of dist/ first: the project is edited and rebuilt (npm test builds) while
 * a benchmark may be running, and every run of one benchmark must measure the same build. Node
 * still finds node_modules from .bench/tool by walking up.
 */
function snapshotTool(): string {
  if (!existsSync(join(root, 'dist', 'cli.js')))
    throw new Error('dist/cli.js is missing: run `npm run build` first (`npm run bench` does)');
  const dir = join(benchDir, 'tool');
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  return join(dir, 'dist', 'cli.js');
}

type RowId = 'ceiling' | 'ceiling-disk' | 'export' | 'export-cache' | 'verify' | 'import' | 'import-archive' | 'noop';
const ROWS: Record<RowId, { title: string; tool?: string; peer?: string }> = {
  ceiling: {
    title: 'registry ceiling (plain GETs)',
    tool: `every config and layer fetched with ${CEILING_PARALLEL} parallel plain HTTP GETs to nowhere`,
  },
  'ceiling-disk': {
    title: 'registry ceiling to disk',
    tool: `the same GETs, each blob into its own file, then sync -f of that filesystem`,
  },
  export: {
    title: 'export',
    tool: 'airgap-bundle export',
    peer: 'skopeo copy --all --preserve-digests per image into oci:/dir:, then tar cf',
  },
  'export-cache': {
    title: 'export --cache-dir (fresh)',
    tool: 'airgap-bundle export --cache-dir (empty cache)',
    peer: 'the same skopeo copies and tar cf as for export',
  },
  verify: { title: 'verify', tool: 'airgap-bundle verify', peer: 'sha256sum -c BUNDLE.sha256' },
  import: {
    title: 'import (empty registry)',
    tool: 'airgap-bundle import --skip-verify',
    peer: 'skopeo copy --all --preserve-digests per image from the oci:/dir: layouts',
  },
  'import-archive': {
    title: 'import 1 image via oci-archive',
    peer: 'skopeo copy oci-archive:BUNDLE:REF (the largest OCI image)',
  },
  noop: {
    title: 're-import (no-op)',
    tool: 'airgap-bundle import --skip-verify, again',
    peer: 'the same skopeo copies again',
  },
};

interface Side {
  seconds: number;
  cpuSeconds: number;
  mbPerSecond: number;
  rssMiB: number;
  writtenBytes: number;
  tmpPeakBytes: number;
  runs: number[];
}
interface Row {
  id: RowId;
  title: string;
  image?: string; // import-archive: the image copied
  bytes: number; // the data the operation carries; MB/s = bytes / 1e6 / seconds
  tool?: Side & { command: string };
  peer?: Side & { command: string };
  ratio?: number; // tool throughput / peer throughput: the median of the runs' own ratios
  ratios?: number[]; // each run's ratio (tool and peer measured back to back)
}

function summarize(samples: Sample[], bytes: number): Side {
  const seconds = median(samples.map((s) => s.seconds));
  return {
    seconds,
    cpuSeconds: median(samples.map((s) => s.cpuSeconds)),
    mbPerSecond: bytes / 1e6 / seconds,
    rssMiB: Math.max(...samples.map((s) => s.rssMiB)),
    writtenBytes: median(samples.map((s) => s.writtenBytes)),
    tmpPeakBytes: Math.max(...samples.map((s) => s.tmpPeakBytes)),
    runs: samples.map((s) => Number(s.seconds.toFixed(3))),
  };
}

/** One benchmark pass over a set of `bytes`: `runs` repetitions, the peer too unless toolOnly. */
async function pass(
  cli: string,
  bytes: number,
  runs: number,
  toolOnly: boolean,
): Promise<{ set: ImageSet; bundleBytes: number; rows: Row[]; ways?: WaysOut }> {
  const label = sizeLabel(bytes);
  const set = await ensureImageSet(join(benchDir, `images-${label}`), bytes, log);
  const work = join(benchDir, `work-${label}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const tmp = join(work, 'tmp');
  const cache = join(work, 'cache');
  const bundle = join(work, 'bundle.tar');
  const peerDir = join(work, 'peer');
  const peerTar = join(work, 'peer.tar');
  const list = join(work, 'images.txt');
  const node = (...a: string[]) => [process.execPath, cli, ...a];
  const skopeo = (...a: string[]) => ['skopeo', '--insecure-policy', ...a];
  // OCI-typed images share one oci: layout; Docker-typed ones need dir:, as oci: would convert them.
  const peerRef = (img: SampleImage) =>
    img.kind.startsWith('oci')
      ? `oci:${peerDir}/oci:${img.repository}:${img.tag}`
      : `dir:${peerDir}/dir-${img.repository.replaceAll('/', '-')}-${img.tag}`;
  const archived = set.images.filter((i) => i.kind.startsWith('oci')).sort((a, b) => b.size - a.size)[0]!;
  const samples = new Map<RowId, { tool: Sample[]; peer: Sample[] }>();
  const record = (id: RowId, side: 'tool' | 'peer', s: Sample) => {
    const entry = samples.get(id) ?? { tool: [], peer: [] };
    entry[side].push(s);
    samples.set(id, entry);
  };

  let dest: RunningRegistry | undefined;
  const freshRegistry = async () => {
    await dest?.stop();
    dest = await startRegistry();
    return dest;
  };

  const upstream = await startRegistry();
  try {
    log(
      `seeding ${set.images.length} images (${(set.uniqueBytes / 1e6).toFixed(0)} MB) into the upstream registry with skopeo`,
    );
    await seedRegistry(upstream, set.images);
    await expectDigests(upstream.host, set.images, 'seeding the upstream registry');
    await writeFile(list, talosLikeList(set.images, upstream.host));
    let ceilingBytes = set.uniqueBytes;

    const checkBundle = async () => {
      const { stdout } = await run(process.execPath, [cli, 'inspect', bundle, '--json']);
      const got = new Map(
        (JSON.parse(stdout) as { images: Array<{ reference: string; digest: string }> }).images.map((i) => [
          i.reference,
          i.digest,
        ]),
      );
      const wrong = set.images.filter((i) => got.get(`${upstream.host}/${i.repository}:${i.tag}`) !== i.digest);
      if (wrong.length > 0 || got.size !== set.images.length)
        throw new Error(`DIGEST MISMATCH in the exported bundle: ${wrong.map((i) => i.repository).join(', ')}`);
    };
    const checkLayouts = async () => {
      const index = JSON.parse(await readFile(join(peerDir, 'oci', 'index.json'), 'utf8')) as {
        manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
      };
      for (const img of set.images) {
        const ref = peerRef(img);
        const digest = ref.startsWith('oci:')
          ? index.manifests.find(
              (m) => m.annotations?.['org.opencontainers.image.ref.name'] === `${img.repository}:${img.tag}`,
            )?.digest
          : sha256Digest(await readFile(join(ref.slice('dir:'.length), 'manifest.json')));
        if (digest !== img.digest)
          throw new Error(`DIGEST MISMATCH in skopeo's layout for ${img.repository}:${img.tag}: ${digest}`);
      }
    };
    const skopeoImport = async (host: string) => {
      const parts: Sample[] = [];
      for (const img of set.images)
        parts.push(
          await measure(
            skopeo(
              'copy',
              '--quiet',
              '--all',
              '--preserve-digests',
              '--dest-tls-verify=false',
              peerRef(img),
              `docker://${host}/${img.repository}:${img.tag}`,
            ),
            tmp,
          ),
        );
      return total(parts);
    };

    // Each step starts with no writeback pending from the one before (both sides alike): on a
    // small VM, gigabytes of dirty pages flushed in the middle of a timed run decide its result.
    const settle = () => run('sync', []);
    const steps = {
      ceiling: async () => {
        await settle();
        const c = await registryCeiling(upstream.host, set.images, CEILING_PARALLEL);
        ceilingBytes = c.bytes;
        record('ceiling', 'tool', { seconds: c.seconds, cpuSeconds: 0, rssMiB: 0, writtenBytes: 0, tmpPeakBytes: 0 });
        const into = join(work, 'ceiling-disk');
        await rm(into, { recursive: true, force: true });
        await mkdir(into, { recursive: true });
        await settle();
        const d = await registryCeiling(upstream.host, set.images, CEILING_PARALLEL, into);
        record('ceiling-disk', 'tool', {
          seconds: d.seconds,
          cpuSeconds: 0,
          rssMiB: 0,
          writtenBytes: d.bytes,
          tmpPeakBytes: 0,
        });
        await rm(into, { recursive: true, force: true });
      },
      toolExport: async () => {
        await rm(cache, { recursive: true, force: true });
        await rm(bundle, { force: true });
        await settle();
        record('export', 'tool', await measure(node('export', '-f', list, '-o', bundle, '--plain-http', '-q'), tmp));
        await checkBundle();
        await rm(bundle, { force: true });
        await settle();
        record(
          'export-cache',
          'tool',
          await measure(node('export', '-f', list, '-o', bundle, '--plain-http', '--cache-dir', cache, '-q'), tmp),
        );
        await checkBundle();
        await rm(cache, { recursive: true, force: true });
      },
      peerExport: async () => {
        await rm(peerDir, { recursive: true, force: true });
        await rm(peerTar, { force: true });
        await mkdir(peerDir);
        await settle();
        const parts: Sample[] = [];
        // One at a time, as a shell loop would: concurrent copies into one oci: layout race on index.json.
        for (const img of set.images) {
          parts.push(
            await measure(
              skopeo(
                'copy',
                '--quiet',
                '--all',
                '--preserve-digests',
                '--src-tls-verify=false',
                `docker://${upstream.host}/${img.repository}:${img.tag}`,
                peerRef(img),
              ),
              tmp,
            ),
          );
        }
        parts.push(await measure(['tar', 'cf', peerTar, '-C', peerDir, '.'], tmp));
        record('export', 'peer', total(parts));
        await checkLayouts();
      },
      toolVerify: async () => record('verify', 'tool', await measure(node('verify', bundle, '-q'), tmp)),
      peerVerify: async () =>
        record('verify', 'peer', await measure(['sha256sum', '--quiet', '-c', `${bundle}.sha256`], tmp, work)),
      toolImport: async () => {
        const reg = await freshRegistry();
        await settle();
        record(
          'import',
          'tool',
          await measure(node('import', bundle, '--registry', reg.host, '--plain-http', '-q', '--skip-verify'), tmp),
        );
        await expectDigests(reg.host, set.images, 'airgap-bundle import');
        await settle();
        record(
          'noop',
          'tool',
          await measure(node('import', bundle, '--registry', reg.host, '--plain-http', '-q', '--skip-verify'), tmp),
        );
        await expectDigests(reg.host, set.images, 'airgap-bundle re-import');
      },
      peerImport: async () => {
        const reg = await freshRegistry();
        await settle();
        record('import', 'peer', await skopeoImport(reg.host));
        await expectDigests(reg.host, set.images, 'skopeo import');
        await settle();
        record('noop', 'peer', await skopeoImport(reg.host));
        await expectDigests(reg.host, set.images, 'skopeo re-import');
        // oci-archive: unpacks the whole archive into its temp folder first, whatever it copies.
        const one = await freshRegistry();
        await settle();
        const ref = `${upstream.host}/${archived.repository}:${archived.tag}`;
        record(
          'import-archive',
          'peer',
          await measure(
            skopeo(
              '--tmpdir',
              tmp,
              'copy',
              '--quiet',
              '--all',
              '--preserve-digests',
              '--dest-tls-verify=false',
              `oci-archive:${bundle}:${ref}`,
              `docker://${one.host}/${archived.repository}:${archived.tag}`,
            ),
            tmp,
          ),
        );
        await expectDigests(one.host, [archived], 'skopeo import from oci-archive');
      },
    };

    for (let i = 0; i < runs; i++) {
      log(`run ${i + 1}/${runs}`);
      // Alternate which side goes first, so neither always inherits the other's warm caches.
      const both = async (tool: () => Promise<void>, peer: () => Promise<void>) => {
        if (toolOnly) return tool();
        if (i % 2 === 0) await tool().then(peer);
        else await peer().then(tool);
      };
      await steps.ceiling();
      await both(steps.toolExport, steps.peerExport);
      // Both read the bundle from the page cache: read it once before either is timed. (Never a
      // synchronous child here: a blocked event loop stops draining the registries' log pipes.)
      for await (const _ of createReadStream(bundle, { highWaterMark: 4 << 20 }));
      await both(steps.toolVerify, steps.peerVerify);
      await both(steps.toolImport, steps.peerImport);
      await dest?.stop();
    }

    const bundleBytes = statSync(bundle).size;
    const rows: Row[] = [];
    for (const [id, def] of Object.entries(ROWS) as Array<[RowId, (typeof ROWS)[RowId]]>) {
      const s =
        id === 'export-cache'
          ? { tool: samples.get(id)?.tool ?? [], peer: samples.get('export')?.peer ?? [] }
          : samples.get(id);
      if (!s || s.tool.length + s.peer.length === 0) continue;
      const rowBytes =
        id === 'verify'
          ? bundleBytes
          : id === 'import-archive'
            ? archived.size
            : id === 'ceiling' || id === 'ceiling-disk'
              ? ceilingBytes
              : set.uniqueBytes;
      const tool = s.tool.length > 0 ? { command: def.tool!, ...summarize(s.tool, rowBytes) } : undefined;
      const peer = s.peer.length > 0 ? { command: def.peer!, ...summarize(s.peer, rowBytes) } : undefined;
      // Tool and peer of one run ran back to back: their ratio is free of the drift a shared
      // machine shows from one minute to the next, which a ratio of two medians is not.
      const ratios =
        tool && peer ? s.tool.map((t, i) => Number((s.peer[i]!.seconds / t.seconds).toFixed(3))) : undefined;
      rows.push({
        id,
        title: def.title,
        ...(id === 'import-archive' ? { image: archived.upstream } : {}),
        bytes: rowBytes,
        tool,
        peer,
        ...(ratios ? { ratio: median(ratios), ratios } : {}),
      });
    }
    const ways = toolOnly || !withWays ? undefined : await waysOut(cli, bundle, join(work, 'ways'), runs);
    // Gigabytes of outputs; kept only when something failed, for a look at what went wrong.
    await rm(work, { recursive: true, force: true });
    return { set, bundleBytes, rows, ...(ways ? { ways } : {}) };
  } finally {
    await dest?.stop();
    await upstream.stop();
  }
}

/** The other ways out of the bundle, on the bundle the pass exported. */
interface WaysOut {
  serve: ServeBenchResult;
  talosCache: {
    ratio: number;
    ratioRange: [number, number];
    durableRatio: number;
    tool: { seconds: number; rssMiB: number };
    peer: { seconds: number };
    durablePeer: { seconds: number };
  };
}

async function waysOut(cli: string, bundle: string, workDir: string, runs: number): Promise<WaysOut> {
  log('serve next to Distribution: 1, 4 and 16 parallel pullers');
  const serve = await benchServe({ bundle, workDir, clients: [1, 4, 16], runs: Math.min(runs, 3), cli, log });
  log('talos-cache next to tar xf');
  const script = join(root, 'scripts', 'bench-talos-cache.ts');
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script, bundle, '--runs', String(runs)]);
  const talosCache = JSON.parse(stdout.trim().split('\n').at(-1)!) as WaysOut['talosCache'];
  return { serve, talosCache };
}

function printWaysOut(w: WaysOut): void {
  process.stdout.write(`\n${formatServeTable(w.serve)}`);
  const t = w.talosCache;
  process.stdout.write(
    `\ntalos-cache (oci) ${t.tool.seconds.toFixed(2)} s, tar xf ${t.peer.seconds.toFixed(2)} s: ${t.ratio.toFixed(2)}x (${t.ratioRange[0].toFixed(2)}-${t.ratioRange[1].toFixed(2)}); tar xf + sync ${t.durablePeer.seconds.toFixed(2)} s: ${t.durableRatio.toFixed(2)}x; peak RSS ${t.tool.rssMiB} MiB\n`,
  );
}

function printTable(rows: Row[]): void {
  const f = (n: number | undefined, digits: number) => (n === undefined ? '-' : n.toFixed(digits));
  const mb = (n: number | undefined) => (n === undefined ? '-' : (n / 1e6).toFixed(n > 0 && n < 1e6 ? 2 : 0));
  const cells = [
    [
      '',
      'tool s',
      'tool MB/s',
      'peer s',
      'peer MB/s',
      'ratio (range)',
      'CPU s tool',
      'CPU s peer',
      'RSS MiB tool',
      'RSS MiB peer',
      'written MB tool',
      'written MB peer',
      'tmp MB tool',
      'tmp MB peer',
    ],
    ...rows.map((r) => [
      r.title,
      f(r.tool?.seconds, 2),
      f(r.tool?.mbPerSecond, 0),
      f(r.peer?.seconds, 2),
      f(r.peer?.mbPerSecond, 0),
      r.ratio === undefined
        ? '-'
        : `${r.ratio.toFixed(2)}x (${Math.min(...r.ratios!).toFixed(2)}-${Math.max(...r.ratios!).toFixed(2)})`,
      f(r.tool?.cpuSeconds, 1),
      f(r.peer?.cpuSeconds, 1),
      f(r.tool?.rssMiB, 0),
      f(r.peer?.rssMiB, 0),
      mb(r.tool?.writtenBytes),
      mb(r.peer?.writtenBytes),
      mb(r.tool?.tmpPeakBytes),
      mb(r.peer?.tmpPeakBytes),
    ]),
  ];
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  for (const r of cells)
    process.stdout.write(`${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}\n`);
}

function machine() {
  const version = (cmd: string, a: string[]) => {
    try {
      return execFileSync(cmd, a, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return 'unknown';
    }
  };
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Number((os.totalmem() / GiB).toFixed(1)),
    kernel: os.release(),
    node: process.version,
    skopeo: version('skopeo', ['--version']),
    registry: version('/usr/bin/docker-registry', ['--version']),
    // Taken with the snapshot of dist/: the commit checked out then, whether src/ had uncommitted
    // edits (dist/ may or may not include them), and when dist/ was built.
    commit: version('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    srcChanged: version('git', ['-C', root, 'status', '--porcelain', 'src']) !== '',
    distBuilt: statSync(join(root, 'dist', 'cli.js')).mtime.toISOString(),
  };
}

async function main(): Promise<void> {
  if (args.includes('--many')) {
    // The many-images benchmark reads the same argv (--many N, --runs, --baseline, --no-peer, --json).
    await import('./bench-many.js');
    return;
  }
  const cli = snapshotTool();
  const facts = machine();
  // Two cores leave no headroom: anything else running skews every number, so say so.
  const loadAtStart = os.loadavg()[0]!;
  if (loadAtStart > 0.5) log(`warning: load average ${loadAtStart.toFixed(2)} before starting; results will be noisy`);
  const started = Date.now();
  const primary = await pass(cli, sizeBytes, runs, false);
  const row = (id: RowId) => primary.rows.find((r) => r.id === id)!;
  const toolRss = Math.max(...primary.rows.flatMap((r) => (r.tool ? [r.tool.rssMiB] : [])));
  const imp = row('import').tool!;
  const exportShare = row('export').tool!.mbPerSecond / row('ceiling').tool!.mbPerSecond;
  const targets = [
    { name: 'export throughput >= 1.5x skopeo', value: row('export').ratio!, met: row('export').ratio! >= 1.5 },
    { name: 'export throughput >= 90 % of the registry ceiling', value: exportShare, met: exportShare >= 0.9 },
    { name: 'import throughput >= 1.5x skopeo', value: row('import').ratio!, met: row('import').ratio! >= 1.5 },
    { name: 'verify throughput >= 1.5x sha256sum', value: row('verify').ratio!, met: row('verify').ratio! >= 1.5 },
    {
      name: `no-op re-import of ${sizeLabel(sizeBytes)} under 2 s`,
      value: row('noop').tool!.seconds,
      met: row('noop').tool!.seconds < 2,
    },
    { name: 'peak RSS under 150 MiB for every command', value: toolRss, met: toolRss < 150 },
    {
      name: 'import writes no disk of its own (bytes)',
      value: Math.max(imp.writtenBytes, imp.tmpPeakBytes),
      met: Math.max(imp.writtenBytes, imp.tmpPeakBytes) < 1e6,
    },
  ];
  const ways = primary.ways;
  if (ways) {
    const at = (n: number) => ways.serve.rows.find((r) => r.clients === n);
    const first = Math.max(...ways.serve.firstResponseMs);
    targets.push(
      ...ways.serve.rows.map((r) => ({
        name: `serve throughput >= ${r.clients === 16 ? '1.5' : '1.0'}x Distribution at ${r.clients} puller(s)`,
        value: r.ratio,
        met: r.ratio >= (r.clients === 16 ? 1.5 : 1.0),
      })),
      {
        name: 'serve peak RSS under 150 MiB at 16 pullers',
        value: at(16)?.serve.peakRssMiB ?? NaN,
        met: (at(16)?.serve.peakRssMiB ?? Infinity) < 150,
      },
      { name: 'serve answers its first request within 1 s (slowest start, ms)', value: first, met: first < 1000 },
      { name: 'talos-cache >= 1.0x tar xf', value: ways.talosCache.ratio, met: ways.talosCache.ratio >= 1.0 },
    );
  }
  let scaled: { factor: number; sizeBytes: number; bundleBytes: number; rows: Row[] } | undefined;
  if (scale > 0) {
    log(`tool-only pass at ${scale}x the size, for memory growth`);
    const s = await pass(cli, sizeBytes * scale, 1, true);
    scaled = { factor: scale, sizeBytes: sizeBytes * scale, bundleBytes: s.bundleBytes, rows: s.rows };
    const rss = Math.max(...s.rows.flatMap((r) => (r.tool ? [r.tool.rssMiB] : [])));
    targets.push({
      name: `peak RSS under 150 MiB at ${scale}x (${sizeLabel(sizeBytes * scale)})`,
      value: rss,
      met: rss < 150,
    });
  }

  const result = {
    date: new Date().toISOString(),
    machine: { ...facts, loadAverage: { atStart: loadAtStart, atEnd: os.loadavg()[0]! } },
    size: {
      requested: sizeLabel(sizeBytes),
      images: primary.set.images.length,
      blobs: primary.set.blobs,
      layers: primary.set.layers,
      uniqueBytes: primary.set.uniqueBytes,
      bundleBytes: primary.bundleBytes,
    },
    runs,
    note: 'seconds: median over runs (wall); cpuSeconds: user+system of the process itself (registries excluded), median; RSS: peak over runs; written: bytes the process wrote to the filesystem (median); tmp: peak size of its TMPDIR; ratio: tool MB/s / peer MB/s, the median of the ratios of each run (tool and peer back to back), ratios: each run',
    rows: primary.rows,
    ...(ways ? { serve: ways.serve, talosCache: ways.talosCache } : {}),
    targets,
    ...(scaled ? { scaled } : {}),
    totalSeconds: Math.round((Date.now() - started) / 1000),
  };
  await mkdir(dirname(jsonFile), { recursive: true });
  await writeFile(jsonFile, `${JSON.stringify(result, null, 2)}\n`);

  const m = result.machine;
  process.stdout.write(
    `\n${primary.set.images.length} images, ${primary.set.blobs} blobs (${primary.set.layers} layers), ${(primary.set.uniqueBytes / 1e6).toFixed(0)} MB unique, bundle ${(primary.bundleBytes / 1e6).toFixed(0)} MB; median of ${runs} runs\n`,
  );
  process.stdout.write(
    `${m.nproc} cores (${m.cpu}), node ${m.node}, ${m.skopeo}, ${m.registry}, airgap-bundle ${m.commit}${m.srcChanged ? ' + uncommitted src changes' : ''} (dist built ${m.distBuilt})\n`,
  );
  process.stdout.write(
    `load average ${m.loadAverage.atStart.toFixed(2)} at start, ${m.loadAverage.atEnd.toFixed(2)} at end\n\n`,
  );
  printTable(primary.rows);
  const share = (id: RowId) => `${((100 * row('export').tool!.mbPerSecond) / row(id).tool!.mbPerSecond).toFixed(0)} %`;
  process.stdout.write(
    `export: ${share('ceiling')} of the registry ceiling, ${share('ceiling-disk')} of the ceiling to disk\n`,
  );
  if (ways) printWaysOut(ways);
  if (scaled) {
    process.stdout.write(`\ntool only at ${scale}x (${(scaled.bundleBytes / 1e6).toFixed(0)} MB bundle), 1 run:\n`);
    printTable(scaled.rows);
  }
  process.stdout.write('\n');
  for (const t of targets)
    process.stdout.write(
      `${t.met ? 'MET    ' : 'NOT MET'}  ${t.name}: ${Number.isInteger(t.value) ? t.value : t.value.toFixed(2)}\n`,
    );
  process.stdout.write(`\nJSON: ${jsonFile} (${result.totalSeconds} s in all)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
