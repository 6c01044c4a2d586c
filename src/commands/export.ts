import { access, constants, stat, statfs } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { rmSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { BlobCache, defaultCacheDir } from '../export/blob-cache.js';
import { collectBundle, type CollectedBundle } from '../export/collect.js';
import { buildMetadata } from '../bundle/metadata.js';
import { writeBundle } from '../export/cache-writer.js';
import { activePartials, type WriteResult } from '../export/publish.js';
import { keepsHoles, InPlaceWriter } from '../export/in-place-writer.js';
import { MAX_IMAGES, type BundleMetadata } from '../bundle/format.js';
import { blobEntries } from '../bundle/volume-content.js';
import { forVolume, parseVolumeSize, volumeLayout, volumeName, VolumeError } from '../bundle/volumes.js';
import { planVolumes } from '../export/volume-plan.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/descriptor.js';
import { Reporter } from '../ui/reporter.js';
import { formatBytes } from '../ui/format.js';
import { onInterrupt, setResumeHint } from '../util/interrupt.js';
import { retainFreedMemory } from '../util/retain-freed-memory.js';
import { TOOL } from '../version.js';
import { UsageError } from './errors.js';
import { gatherReferences, imageSourceOptions, loadSpec, type ImageSourceArgs } from './image-inputs.js';
import { loadExclusions } from '../export/exclusions.js';
import { loadSigner } from './signing.js';
import { formatOrigin } from '../reference/image-list.js';
import { buildClient, parseMirrors, registryOptions, type RegistryArgs } from './registry-options.js';
import { outputOptions, type OutputArgs } from './output-options.js';
import { isDiskFull } from '../util/disk-full.js';

interface ExportArgs extends RegistryArgs, OutputArgs, ImageSourceArgs {
  output?: string;
  'exclude-receipt': string[];
  'exclude-bundle': string[];
  'volume-size'?: string;
  'sign-key'?: string;
  signatures: boolean;
  platform: string[];
  'registry-mirror': string[];
  'cache-dir'?: string;
}

export const command = 'export [images..]';
export const describe = 'Fetch images from registries into one checksummed OCI-layout bundle tar';

export function builder(y: Argv): Argv<ExportArgs> {
  return imageSourceOptions(outputOptions(registryOptions(y)))
    .option('output', { alias: 'o', type: 'string', describe: 'Bundle file to write (NAME.tar; NAME.tar.sha256 is written beside it)' })
    .option('platform', { type: 'string', array: true, default: [], describe: 'Carry only these platforms of multi-arch images, os/arch[/variant] (repeatable; default all)' })
    .option('registry-mirror', { type: 'string', array: true, default: [], describe: 'Fetch HOST (or *) through URL, e.g. *=http://127.0.0.1:5001 (repeatable)' })
    .option('exclude-receipt', { type: 'string', default: [] as string[], coerce: (v: string | string[]) => ([] as string[]).concat(v), describe: 'Delta: leave out blobs listed in this receipt from `inventory` (repeatable)' })
    .option('exclude-bundle', { type: 'string', default: [] as string[], coerce: (v: string | string[]) => ([] as string[]).concat(v), describe: 'Delta: leave out blobs carried by this earlier bundle (repeatable)' })
    .option('volume-size', { type: 'string', describe: 'Split into self-contained volumes NAME.volNNN.tar of at most SIZE (700M, 4G, fat32)' })
    .option('signatures', { type: 'boolean', default: true, describe: 'Carry cosign signatures, attestations, SBOMs and OCI referrers of every image (--no-signatures to leave them out)' })
    .option('sign-key', { type: 'string', describe: 'Ed25519 private key (from keygen): sign the bundle metadata, stored in the bundle and as NAME.tar.sig' })
    .option('cache-dir', {
      type: 'string',
      describe: 'Also keep verified blobs in DIR, so later exports of overlapping images fetch only what is new (one more write per byte; default: $AIRGAP_BUNDLE_CACHE, else none; volume sets always use one, ~/.cache/airgap-bundle by default). Safe to delete',
    })
    .example('talosctl images | $0 export -f - -o talos.tar', 'Bundle every image talosctl lists')
    .example('$0 export busybox:1.36 ghcr.io/siderolabs/installer:v1.8.0 --platform linux/amd64 -o x.tar', 'Two images, amd64 only')
    .example('$0 export --spec bundles/talos.yaml', 'Everything from a spec file')
    .example('$0 export --from-talos-config controlplane.yaml --from-manifests apps/ -o cluster.tar', 'The images a Talos config and workload manifests name')
    .example('$0 export -f talos.images -o talos.tar --volume-size fat32', 'Volumes that fit FAT32 USB sticks: talos.vol001.tar, …')
    .example('$0 export -f v1.9.images --exclude-receipt receipt.json -o upgrade.tar', 'A delta: only what the isolated registry lacks')
    .example("$0 export -f images.txt --registry-mirror '*=http://127.0.0.1:5001' -o b.tar", 'Fetch through a mirror; the bundle keeps the original names')
    .example('$0 export -f v1.9.images -o v1.9.tar --cache-dir ~/.cache/airgap-bundle', 'Keep the blobs: the next release\'s export fetches only what is new')
    .epilog(
      'Blobs are written straight to their place in the bundle as they download and checked against their digests right behind (a damaged one is fetched again); the bundle is written under a hidden temporary name and renamed when complete. ' +
        'A run that is interrupted or fails keeps that partial file, and a rerun of the same command resumes from it, fetching only what is missing. Exit codes: 0 done, 1 failure, 2 usage error, 130 interrupted.',
    ) as unknown as Argv<ExportArgs>;
}

function parsePlatforms(values: string[]): Platform[] | undefined {
  if (values.length === 0) return undefined;
  try {
    return values.flatMap((v) => v.split(',')).filter((v) => v.trim() !== '').map(parsePlatform);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function checkOutputDir(output: string): Promise<void> {
  const dir = dirname(output);
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new UsageError(`cannot write ${output}: folder ${dir} does not exist or is not writable`);
  }
}

export async function handler(argv: ArgumentsCamelCase<ExportArgs>): Promise<void> {
  retainFreedMemory();
  const reporter = new Reporter({ quiet: argv.quiet, json: argv.json, tty: process.stderr.isTTY === true });
  const loaded = await loadSpec(argv.spec);
  const spec = loaded?.spec;
  const outputArg = argv.output ?? spec?.output;
  if (!outputArg) throw new UsageError('no output file: pass -o NAME.tar (or "output" in the spec)');
  const output = resolve(outputArg);
  const { references: refs, warnings } = await gatherReferences(argv, loaded);
  for (const w of warnings) reporter.warn(w);
  if (refs.length > MAX_IMAGES) throw new UsageError(`${refs.length} image references, more than the ${MAX_IMAGES} one bundle holds; split the list into several bundles`);
  const platforms = parsePlatforms(argv.platform.length > 0 ? argv.platform : spec?.platforms ?? []);
  const mirrors = parseMirrors([...argv['registry-mirror'], ...(spec?.mirrors ?? [])]);
  await checkOutputDir(output);
  const { exclude, sources: excludeSources } = await loadExclusions(argv['exclude-receipt'], argv['exclude-bundle']);
  const signer = await loadSigner(argv['sign-key']);
  let volumeSize: number | undefined;
  try {
    volumeSize = argv['volume-size'] !== undefined ? parseVolumeSize(argv['volume-size']) : undefined;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  // One bundle is written in one pass, each blob straight to its place; a cache (asked for, or
  // needed by volume sets, which are planned from every blob) costs a second write of each byte.
  const askedCache = argv['cache-dir'] ?? (process.env.AIRGAP_BUNDLE_CACHE || undefined);
  // A filesystem without holes (FAT, exFAT: USB sticks) zero-fills a file written out of order
  // before the first byte lands: there the bundle is written in order, from the cache.
  const inOrder = askedCache === undefined && volumeSize === undefined && !(await keepsHoles(dirname(output)));
  if (inOrder) reporter.info(`${dirname(output)} is on a filesystem without sparse files (FAT or exFAT): blobs go to the cache first and the bundle is written in order`);
  const cacheDir = askedCache ?? (volumeSize !== undefined || inOrder ? defaultCacheDir() : undefined);
  const cache = cacheDir !== undefined ? new BlobCache(cacheDir) : undefined;
  await cache?.init();
  const sourceDateEpoch = parseSourceDateEpoch(process.env.SOURCE_DATE_EPOCH);
  const describe = (c: Pick<CollectedBundle, 'images' | 'blobs'>) =>
    buildMetadata(c.images, c.blobs, {
      tool: TOOL,
      platforms: platforms ? platforms.map(formatPlatform) : null,
      deltaAgainst: excludeSources,
      ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
    });
  const writeOptions = {
    ...(signer ? { sign: signer } : {}),
    ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
    onBytes: (n: number) => reporter.advance('write', n),
  };
  const placed = cache ? undefined : new InPlaceWriter({ output, describe, ...writeOptions });
  setResumeHint(cache ? `rerun the same command to resume; verified blobs are kept in ${cache.root}` : `rerun the same command to resume from ${placed!.partial}`);
  const forget = onInterrupt(() => {
    for (const p of activePartials) rmSync(p, { force: true });
  });

  const { client, close } = buildClient(argv, {
    mirrors,
    onRetry: (e) => reporter.warn(`${e.reason}; retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)}s`),
  });
  const started = Date.now();
  try {
    reporter.info(`${refs.length} image reference${refs.length > 1 ? 's' : ''}${platforms ? ` for ${platforms.map(formatPlatform).join(', ')}` : ''}:`);
    for (const r of refs) reporter.info(`  ${r.name}  (from ${r.origins.map(formatOrigin).join('; ')})`);
    const startWriting = (path: string, metadata: BundleMetadata) => reporter.startBytes('write', `writing ${basename(path)}`, blobEntries(metadata).reduce((s, e) => s + e.size, 0));
    const write = (store: BlobCache, path: string, metadata: BundleMetadata, ready?: (digest: string) => Promise<void>) => {
      startWriting(path, metadata);
      return writeBundle(store, metadata, { output: path, ...writeOptions, ...(ready ? { ready } : {}) });
    };
    const written: WriteResult[] = [];
    const collected = await collectBundle(refs, client, cache ?? placed!, {
      ...(platforms ? { platforms } : {}),
      concurrency: argv.concurrency,
      artifacts: argv.signatures,
      exclude,
      beforeDownload: async (sizes, c) => {
        if (volumeSize !== undefined) usageOnVolumeError(() => volumeLayout(describe(c), volumeSize));
        await ensureSpace(dirname(output), cache?.root, sizes);
      },
      // One bundle is written while its blobs download, right behind them; volumes
      // are planned from every blob (a blob cut into parts is hashed part by part).
      ...(placed
        ? {
            consume: async (c, ready, refetch) => {
              startWriting(output, describe(c));
              written.push(await placed.finish(ready, refetch, argv.retries));
            },
          }
        : volumeSize === undefined
          ? { consume: async (c, ready) => void written.push(await write(cache!, output, describe(c), ready)) }
          : {}),
      events: {
        warn: (message) => reporter.warn(message),
        resolved: (ref, im) =>
          reporter.info(im.artifact ? `found ${im.artifact.kind} ${ref} for ${im.artifact.of}` : `resolved ${ref} ${im.digest.slice(0, 19)} ${im.platforms.filter((p) => p.carried).length || 1} manifest(s), ${formatBytes(im.bytes)}`),
        blobQueued: (t) => {
          if (t.cached > 0) reporter.info(`${t.cached} of ${t.count} blobs (${formatBytes(t.cachedBytes)}) already ${cache ? 'in the cache' : `in the partial bundle of an earlier run`}`);
          reporter.startBytes('fetch', 'fetching blobs', t.bytes - t.cachedBytes);
        },
        blobProgress: (n) => reporter.advance('fetch', n),
      },
    }).catch(async (err: unknown) => {
      if (!placed) throw err;
      // A partial bundle is what a rerun resumes from, unless the disk is full.
      const full = placed.outOfSpace || isDiskFull(err);
      await placed.abort(!full);
      if (full) throw new Error(`no space left in ${dirname(output)} while writing ${basename(output)}, which needs ${formatBytes(placed.size)} (partial file removed); free space or choose another -o folder, then rerun`);
      if (placed.started) reporter.warn(`the partial bundle ${placed.partial} is kept: rerun the same command to resume`);
      throw err;
    });
    reporter.stop();
    const totalBytes = collected.blobs.filter((b) => !b.external).reduce((s, b) => s + b.size, 0);
    const externalBytes = collected.blobs.filter((b) => b.external).reduce((s, b) => s + b.size, 0);
    if (volumeSize !== undefined) {
      const volumes = await planVolumes(describe(collected), volumeSize, (d) => cache!.path(d));
      reporter.info(`${volumes.volumes!.count} volumes of at most ${formatBytes(volumeSize)}`);
      for (let i = 1; i <= volumes.volumes!.count; i++) {
        written.push(await write(cache!, volumeName(output, i), forVolume(volumes, i)));
        reporter.stop();
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const shared = collected.images.reduce((s, im) => s + im.bytes, 0) - totalBytes - externalBytes;
    if (exclude.size > 0) reporter.info(`delta: ${collected.blobs.filter((b) => b.external).length} blobs (${formatBytes(externalBytes)}) left out, already on the isolated side`);
    for (const w of written) reporter.info(`wrote ${w.path} (${formatBytes(w.bytes)}), checksum ${w.sidecar}: sha256 ${w.sha256}`);
    reporter.info(`${collected.images.length} images, ${collected.blobs.length} blobs, ${formatBytes(Math.max(0, shared))} saved by shared blobs, in ${seconds.toFixed(1)}s`);
    const first = written[0]!;
    reporter.result({
      bundle: first.path,
      sidecar: first.sidecar,
      bytes: written.reduce((s, w) => s + w.bytes, 0),
      sha256: first.sha256,
      integrity: first.integrity,
      ...(volumeSize !== undefined ? { volumes: written.map((w) => ({ path: w.path, sidecar: w.sidecar, bytes: w.bytes, sha256: w.sha256, integrity: w.integrity })) } : {}),
      seconds,
      images: collected.images.map((im) => ({ reference: im.reference, digest: im.digest, mediaType: im.mediaType, bytes: im.bytes, platforms: im.platforms.filter((p) => p.carried).map((p) => p.platform) })),
      blobs: collected.blobs.length,
      fetched: collected.fetched,
      cached: collected.cached,
    });
  } finally {
    reporter.stop();
    forget();
    close();
  }
}

/** A volume size too small for the bundle is the caller's choice to change: a usage error, before any download. */
function usageOnVolumeError(check: () => unknown): void {
  try {
    check();
  } catch (err) {
    if (err instanceof VolumeError) throw new UsageError(err.message);
    throw err;
  }
}

/** Every tar entry costs a header and padding; metadata and index.json come on top. */
const TAR_OVERHEAD_PER_MB = 4096;

/**
 * Refuses before the first layer is fetched when the disks clearly cannot hold
 * the work: the output folder the bundle, less what a resumed partial bundle
 * already holds, and a cache what is still to download (both on one filesystem
 * when they share one).
 */
async function ensureSpace(outputDir: string, cacheDir: string | undefined, sizes: { bundleBytes: number; downloadBytes: number }): Promise<void> {
  const bundle = sizes.bundleBytes + Math.ceil(sizes.bundleBytes / 1e6) * TAR_OVERHEAD_PER_MB + 1024 * 1024;
  const [outStat, cacheStat] = await Promise.all([stat(outputDir), cacheDir !== undefined ? stat(cacheDir) : undefined]);
  const checks = !cacheStat
    ? [{ dir: outputDir, need: bundle - (sizes.bundleBytes - sizes.downloadBytes), what: `the bundle (${formatBytes(bundle)}, of which ${formatBytes(sizes.downloadBytes)} still to download)` }]
    : outStat.dev === cacheStat.dev
      ? [{ dir: outputDir, need: bundle + sizes.downloadBytes, what: `the bundle (${formatBytes(bundle)}) and the blobs still to download into the cache (${formatBytes(sizes.downloadBytes)})` }]
      : [
          { dir: outputDir, need: bundle, what: `the bundle (${formatBytes(bundle)})` },
          { dir: cacheDir!, need: sizes.downloadBytes, what: `the blobs still to download (${formatBytes(sizes.downloadBytes)})` },
        ];
  for (const c of checks) {
    const st = await statfs(c.dir);
    const free = st.bavail * st.bsize;
    if (free < c.need) {
      throw new Error(`not enough space in ${c.dir}: ${c.what} need ${formatBytes(c.need)}, ${formatBytes(free)} free; free some space, or choose another -o folder${cacheDir !== undefined ? ' or --cache-dir' : ''}`);
    }
  }
}

function parseSourceDateEpoch(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got "${value}"`);
  return Number(value);
}
