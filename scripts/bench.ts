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
 * The ceilings, measured in every run next to the steps they bound (scripts/bench/):
 *   read ceiling, to nowhere  every config and layer fetched from the upstream registry with 4
 *              parallel plain HTTP GETs (Node's client) and dropped: what the registry serves on
 *              this machine, sharing its cores (information: no tool that keeps the bytes gets there)
 *   read ceiling to disk  the same GETs, each blob written to its place in one file with export's
 *              flushing (fdatasync every 256 MiB, fsync, rename, fsync of the folder): the least a
 *              tool that keeps the bytes durably can take here; export is held to 95 % of it
 *   ingest ceiling  every blob and manifest of the set put into a fresh registry by 4 parallel
 *              plain requests (one monolithic upload per blob, mounts into the other repositories,
 *              then the manifests), the bytes read from the file above: what the registry takes
 *              in here; import's share of it is reported
 *
 *   serve      on the exported bundle: skopeo pulls of every image at 1, 4 and 16 parallel pullers
 *              from `airgap-bundle serve` vs from Distribution holding the same images
 *              (scripts/bench-serve.ts), and the time to the first answer after start
 *   talos-cache on the exported bundle: the oci image cache vs `tar xf` of the bundle, and vs
 *              `tar xf` with its files flushed (`sync`), as the tool's are (scripts/bench-talos-cache.ts)
 *
 * Every target is printed MET or MISSED with the figure measured and its limit
 * (scripts/bench/targets.ts); the limits are ones this machine can judge: shares of ceilings and
 * ratios to peers measured in the same run.
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
import http from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ensureImageSet, type ImageSet } from './lib/bench-images.js';
import { expectDigests, measure, total, type Sample } from './lib/bench-measure.js';
import { run } from './lib/process.js';
import { startRegistry, type RunningRegistry } from './lib/registry.js';
import { seedRegistry, talosLikeList, type SampleImage } from './lib/samples.js';
import { sha256Digest } from './lib/digest.js';
import { benchServe, formatServeTable, serveTargets, type ServeBenchResult } from './bench-serve.js';
import { readSetContent } from './bench/set-content.js';
import { readCeiling, readCeilingToDisk } from './bench/read-ceiling.js';
import { ingestCeiling } from './bench/ingest-ceiling.js';
import { formatFigure, formatTarget, judge, pairedShare, type PairedShare, type Target } from './bench/targets.js';

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

/** Requests at once for the ceilings: as many as export's and import's default --concurrency keeps in flight. */
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

type RowId =
  'ceiling' | 'ceiling-disk' | 'ingest' | 'export' | 'export-cache' | 'verify' | 'import' | 'import-archive' | 'noop';
const ROWS: Record<RowId, { title: string; tool?: string; peer?: string }> = {
  ceiling: {
    title: 'read ceiling, to nowhere',
    tool: `every config and layer fetched with ${CEILING_PARALLEL} parallel plain HTTP GETs and dropped`,
  },
  'ceiling-disk': {
    title: 'read ceiling to disk',
    tool: `the same GETs into one file at each blob's place, fdatasync every 256 MiB, fsync, rename, fsync of the folder`,
  },
  ingest: {
    title: 'ingest ceiling (plain PUTs)',
    tool: `every blob (one monolithic upload each, then mounts) and manifest put into a fresh registry, ${CEILING_PARALLEL} parallel plain requests`,
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
    // What the ceilings move, read once: the set's manifests (kept) and its blobs (listed).
    const walker = new http.Agent({ keepAlive: true });
    const content = await readSetContent(walker, upstream.host, set.images).finally(() => walker.destroy());
    let ingestBytes = 0;

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
        const only = (seconds: number, writtenBytes = 0): Sample => ({
          seconds,
          cpuSeconds: 0,
          rssMiB: 0,
          writtenBytes,
          tmpPeakBytes: 0,
        });
        await settle();
        record('ceiling', 'tool', only((await readCeiling(upstream.host, content, CEILING_PARALLEL)).seconds));
        const into = join(work, 'ceiling-disk');
        await rm(into, { recursive: true, force: true });
        await mkdir(into, { recursive: true });
        await settle();
        const d = await readCeilingToDisk(upstream.host, content, CEILING_PARALLEL, join(into, 'set.bin'));
        record('ceiling-disk', 'tool', only(d.seconds, d.bytes));
        // The ingest ceiling reads what the ceiling to disk wrote, from the page cache, as import
        // reads the bundle.
        for await (const _ of createReadStream(d.file.path, { highWaterMark: 4 << 20 }));
        const reg = await freshRegistry();
        await settle();
        const i = await ingestCeiling(reg.host, content, d.file, CEILING_PARALLEL);
        ingestBytes = i.bytes;
        record('ingest', 'tool', only(i.seconds));
        await expectDigests(reg.host, set.images, 'the ingest ceiling');
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
              ? content.blobBytes
              : id === 'ingest'
                ? ingestBytes
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
  const { stdout } = await run(process.execPath, [
    '--import',
    'tsx',
    script,
    bundle,
    '--runs',
    String(runs),
    '--cli',
    cli,
  ]);
  const talosCache = JSON.parse(stdout.trim().split('\n').at(-1)!) as WaysOut['talosCache'];
  return { serve, talosCache };
}

function printWaysOut(w: WaysOut): void {
  process.stdout.write(`\n${formatServeTable(w.serve)}`);
  const t = w.talosCache;
  process.stdout.write(
    `\ntalos-cache (oci) ${t.tool.seconds.toFixed(2)} s; tar xf + sync ${t.durablePeer.seconds.toFixed(2)} s: ${t.durableRatio.toFixed(2)}x (the target); plain tar xf ${t.peer.seconds.toFixed(2)} s: ${t.ratio.toFixed(2)}x (${t.ratioRange[0].toFixed(2)}-${t.ratioRange[1].toFixed(2)}), information; peak RSS ${t.tool.rssMiB} MiB\n`,
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

/** Each step's share of the ceiling that bounds it, run by run (each run measured its own ceilings). */
function shares(rows: Row[]) {
  const side = (id: RowId) => {
    const r = rows.find((x) => x.id === id);
    return { bytes: r?.bytes ?? 0, seconds: r?.tool?.runs ?? [] };
  };
  return {
    exportOfReadCeiling: pairedShare(side('export'), side('ceiling')),
    exportOfReadCeilingToDisk: pairedShare(side('export'), side('ceiling-disk')),
    importOfIngestCeiling: pairedShare(side('import'), side('ingest')),
  };
}

function printShares(s: ReturnType<typeof shares>): void {
  const pct = (p: PairedShare) =>
    `${formatFigure(p.median, '%')}${p.each.length > 1 ? ` (${formatFigure(p.min, '%')}-${formatFigure(p.max, '%')})` : ''}`;
  process.stdout.write(
    `export: ${pct(s.exportOfReadCeilingToDisk)} of the read ceiling to disk, ${pct(s.exportOfReadCeiling)} of the read ceiling to nowhere\n` +
      `import: ${pct(s.importOfIngestCeiling)} of the ingest ceiling\n`,
  );
}

/** The targets of the core steps, every one against a peer or a ceiling measured in this run. */
function coreTargets(rows: Row[], size: number): Target[] {
  const row = (id: RowId) => rows.find((r) => r.id === id);
  const atLeast = (name: string, measured: number | undefined, limit: number, unit: 'x' | '%'): Target => ({
    name,
    measured: measured ?? NaN,
    limit,
    kind: 'at-least',
    unit,
  });
  const toolRss = Math.max(...rows.flatMap((r) => (r.tool ? [r.tool.rssMiB] : [])));
  const imp = row('import')?.tool;
  return [
    atLeast('export throughput >= 1.5x skopeo', row('export')?.ratio, 1.5, 'x'),
    atLeast(
      'export throughput >= 95 % of the read ceiling to disk',
      shares(rows).exportOfReadCeilingToDisk.median,
      0.95,
      '%',
    ),
    atLeast('import throughput >= 1.5x skopeo', row('import')?.ratio, 1.5, 'x'),
    atLeast('verify throughput >= 1.5x sha256sum', row('verify')?.ratio, 1.5, 'x'),
    {
      name: `no-op re-import of ${sizeLabel(size)} under 2 s`,
      measured: row('noop')?.tool?.seconds ?? NaN,
      limit: 2,
      kind: 'under',
      unit: 's',
    },
    { name: 'peak RSS under 150 MiB for every command', measured: toolRss, limit: 150, kind: 'under', unit: 'MiB' },
    {
      name: 'import writes no disk of its own',
      measured: imp ? Math.max(imp.writtenBytes, imp.tmpPeakBytes) : NaN,
      limit: 1e6,
      kind: 'under',
      unit: 'bytes',
    },
  ];
}

/** talos-cache against `tar xf` made as durable as the cache (its files flushed): plain `tar xf` is information. */
function talosCacheTarget(t: WaysOut['talosCache']): Target {
  return {
    name: 'talos-cache >= 1.0x tar xf + sync of its files',
    measured: t.durableRatio,
    limit: 1,
    kind: 'at-least',
    unit: 'x',
  };
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
  const targets: Target[] = coreTargets(primary.rows, sizeBytes);
  if (primary.ways) targets.push(...serveTargets(primary.ways.serve), talosCacheTarget(primary.ways.talosCache));
  let scaled: { factor: number; sizeBytes: number; bundleBytes: number; rows: Row[] } | undefined;
  if (scale > 0) {
    log(`tool-only pass at ${scale}x the size, for memory growth`);
    const s = await pass(cli, sizeBytes * scale, 1, true);
    scaled = { factor: scale, sizeBytes: sizeBytes * scale, bundleBytes: s.bundleBytes, rows: s.rows };
    const rss = Math.max(...s.rows.flatMap((r) => (r.tool ? [r.tool.rssMiB] : [])));
    targets.push({
      name: `peak RSS under 150 MiB at ${scale}x (${sizeLabel(sizeBytes * scale)})`,
      measured: rss,
      limit: 150,
      kind: 'under',
      unit: 'MiB',
    });
  }

  const judged = targets.map(judge);
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
    ...(primary.ways ? { serve: primary.ways.serve, talosCache: primary.ways.talosCache } : {}),
    shares: shares(primary.rows),
    targets: judged,
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
  printShares(result.shares);
  if (primary.ways) printWaysOut(primary.ways);
  if (scaled) {
    process.stdout.write(`\ntool only at ${scale}x (${(scaled.bundleBytes / 1e6).toFixed(0)} MB bundle), 1 run:\n`);
    printTable(scaled.rows);
  }
  process.stdout.write('\n');
  for (const t of judged) process.stdout.write(`${formatTarget(t)}\n`);
  const missed = judged.filter((t) => !t.met).length;
  process.stdout.write(`${judged.length - missed} of ${judged.length} targets met\n`);
  process.stdout.write(`\nJSON: ${jsonFile} (${result.totalSeconds} s in all)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
