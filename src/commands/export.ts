import type { SignatureOptions } from '../signatures/check-images.js';
import { SignaturePolicyRefusal } from '../signatures/errors.js';
import { printSignatures, signatureOptions, signatureOptionsFrom, type SignatureArgs } from './signature-options.js';
import { access, constants } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import {
  planExport,
  chooseExportMode,
  exportBundle,
  type ExportEvents,
  type ExportMode,
  type ExportRequest,
  type ExportResult,
} from '../export/export-bundle.js';
import { carriedBytes, MAX_IMAGES } from '../bundle/format.js';
import { parseVolumeSize } from '../bundle/volumes.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/descriptor.js';
import type { Mirror } from '../registry/endpoint.js';
import { Reporter } from '../ui/reporter.js';
import { formatBytes } from '../util/bytes.js';
import { printable } from '../util/text.js';
import { retainFreedMemory } from '../util/retain-freed-memory.js';
import { CheckFailed, ExitCode, UsageError } from './errors.js';
import { gatherReferences, imageSourceOptions, loadSpec, type ImageSourceArgs } from './image-inputs.js';
import { loadExclusions } from '../export/exclusions.js';
import { loadSigner } from './signing.js';
import { formatOrigin } from '../reference/image-list.js';
import { buildClient, parseMirrors, registryOptions, type RegistryArgs } from './registry-options.js';
import { outputOptions, type OutputArgs } from './output-options.js';
import { prepareToolCopy, toolCopyOptions, type ToolCopyArgs, type ToolCopyReport } from '../tool-copy/with-tool.js';
import {
  checkedFileRequests,
  fileArtifacts,
  fileOptions,
  removeStaging,
  tidyStaging,
  stagingFolder,
  type FileArgs,
} from './file-options.js';
import type { FileRequest } from '../files/request.js';
import { chartPrefixOption, parseChartPrefix, type ChartPrefixArgs } from './chart-options.js';
import { factoryInputs, factoryOptions, type FactoryArgs, type FactoryInputs } from './factory-options.js';
import type { BuiltArtifact } from '../oci/artifact.js';

interface ExportArgs
  extends
    RegistryArgs,
    OutputArgs,
    ImageSourceArgs,
    ToolCopyArgs,
    SignatureArgs,
    FileArgs,
    ChartPrefixArgs,
    FactoryArgs {
  output?: string;
  'exclude-receipt': string[];
  'exclude-bundle': string[];
  'volume-size'?: string;
  'dry-run': boolean;
  'sign-key'?: string;
  signatures: boolean;
  platform: string[];
  'registry-mirror': string[];
  'cache-dir'?: string;
}

export const command = 'export [images..]';
export const describe = 'Fetch images from registries into one checksummed OCI-layout bundle tar';

export function builder(y: Argv): Argv<ExportArgs> {
  return withHelp(toolCopyOptions(options(y))) as unknown as Argv<ExportArgs>;
}

/** The options, with what each means. */
function options(y: Argv): Argv {
  return factoryOptions(
    chartPrefixOption(fileOptions(signatureOptions(imageSourceOptions(outputOptions(registryOptions(y))))))
      .option('output', {
        alias: 'o',
        type: 'string',
        describe: 'Bundle file to write (NAME.tar; NAME.tar.sha256 is written beside it)',
      })
      .option('platform', {
        type: 'string',
        array: true,
        default: [],
        describe: 'Carry only these platforms of multi-arch images, os/arch[/variant] (repeatable; default all)',
      })
      .option('registry-mirror', {
        type: 'string',
        array: true,
        default: [],
        describe: 'Fetch HOST (or *) through URL, e.g. *=http://127.0.0.1:5001 (repeatable)',
      })
      .option('exclude-receipt', {
        type: 'string',
        default: [] as string[],
        coerce: (v: string | string[]) => ([] as string[]).concat(v),
        describe: 'Delta: leave out blobs listed in this receipt from `inventory` (repeatable)',
      })
      .option('exclude-bundle', {
        type: 'string',
        default: [] as string[],
        coerce: (v: string | string[]) => ([] as string[]).concat(v),
        describe: 'Delta: leave out blobs carried by this earlier bundle (repeatable)',
      })
      .option('volume-size', {
        type: 'string',
        describe: 'Split into self-contained volumes NAME.volNNN.tar of at most SIZE (700M, 4G, fat32)',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe:
          'Resolve every manifest, check every signature (--verify-signatures) and the space, print the plan; fetch no blob, write nothing',
      })
      .option('signatures', {
        type: 'boolean',
        default: true,
        describe:
          'Carry cosign signatures, attestations, SBOMs and OCI referrers of every image (--no-signatures to leave them out)',
      })
      .option('sign-key', {
        type: 'string',
        describe:
          'Ed25519 private key (from keygen): sign the bundle metadata, stored in the bundle and as NAME.tar.sig',
      })
      .option('cache-dir', {
        type: 'string',
        describe:
          'Also keep verified blobs in DIR, so later exports of overlapping images fetch only what is new (one more write per byte; default: $AIRGAP_BUNDLE_CACHE, else none; volume sets always use one, ~/.cache/airgap-bundle by default). Safe to delete',
      }),
  );
}

/** Examples and the closing text of --help: how the options combine, and the exit codes. */
function withHelp(y: Argv): Argv {
  return y
    .example('talosctl images | $0 export -f - -o talos.tar', 'Bundle every image talosctl lists')
    .example(
      '$0 export busybox:1.36 ghcr.io/siderolabs/installer:v1.8.0 --platform linux/amd64 -o x.tar',
      'Two images, amd64 only',
    )
    .example('$0 export --spec bundles/talos.yaml', 'Everything from a spec file')
    .example(
      '$0 export --from-talos-config controlplane.yaml --from-manifests apps/ -o cluster.tar',
      'The images a Talos config and workload manifests name',
    )
    .example(
      '$0 export -f talos.images -o talos.tar --volume-size fat32',
      'Volumes that fit FAT32 USB sticks: talos.vol001.tar, …',
    )
    .example(
      '$0 export -f v1.9.images --exclude-receipt receipt.json -o upgrade.tar',
      'A delta: only what the isolated registry lacks',
    )
    .example(
      "$0 export -f images.txt --registry-mirror '*=http://127.0.0.1:5001' -o b.tar",
      'Fetch through a mirror; the bundle keeps the original names',
    )
    .example(
      '$0 export -f talos.images --file https://example.com/talosctl-linux-amd64#sha256=HEX --file ./metal-amd64.iso -o talos.tar',
      'Carry files beside the images: served at /files/NAME, pushed by import as OCI artifacts oras pulls',
    )
    .example(
      '$0 export -f v1.9.images -o v1.9.tar --cache-dir ~/.cache/airgap-bundle',
      "Keep the blobs: the next release's export fetches only what is new",
    )
    .epilog(
      'Blobs are written straight to their place in the bundle as they download and checked against their digests right behind (a damaged one is fetched again); the bundle is written under a hidden temporary name and renamed when complete. ' +
        'A run that is interrupted or fails keeps that partial file, and a rerun of the same command resumes from it, fetching only what is missing. With --verify-signatures the signature of every image is checked against the policy before a blob is fetched; one that fails stops the export with nothing written. Exit codes: 0 done, 1 failure, 2 usage error, 5 an image fails the signature policy, 130 interrupted.',
    );
}

function parsePlatforms(values: string[]): Platform[] | undefined {
  if (values.length === 0) return undefined;
  try {
    return values
      .flatMap((v) => v.split(','))
      .filter((v) => v.trim() !== '')
      .map(parsePlatform);
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
  const { request, mirrors, volumeSize, files, charts } = await parseExportArgs(argv, reporter);
  if (argv['dry-run']) return printPlan(argv, reporter, request, mirrors);
  const copyTool = await prepareToolCopy(argv, reporter);
  const cacheDir = argv['cache-dir'] ?? (process.env.AIRGAP_BUNDLE_CACHE || undefined);
  const mode = await chooseExportMode(request.output, cacheDir, volumeSize);
  if (mode.kind === 'cache' && mode.reason === 'no-holes')
    reporter.info(
      `${dirname(request.output)} is on a filesystem without sparse files (FAT or exFAT): blobs go to the cache first and the bundle is written in order`,
    );
  const sourceDateEpoch = parseSourceDateEpoch(process.env.SOURCE_DATE_EPOCH);
  const { client, close } = buildClient(argv, {
    mirrors,
    onRetry: (e) => reporter.warn(`${e.reason}; retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)}s`),
  });
  const started = Date.now();
  const staging = stagingFolder(request.output, cacheDir);
  try {
    const built = [
      ...charts,
      ...(await fileArtifacts(files, argv, staging.path, reporter).catch(async (err: unknown) => {
        await tidyStaging(staging);
        throw err;
      })),
    ];
    const result = await exportBundle(
      client,
      {
        ...request,
        mode,
        ...(built.length > 0 ? { built } : {}),
        ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
      },
      progressEvents(reporter, mode, request.platforms, { ...argv, policy: request.signatures }),
    ).catch((err: unknown) => {
      if (err instanceof SignaturePolicyRefusal) throw new CheckFailed(err.message, ExitCode.unsigned);
      throw err;
    });
    if (files.length > 0) await removeStaging(staging);
    const tool = await copyTool?.(result.written[0]!.path);
    const seconds = (Date.now() - started) / 1000;
    reportExport(reporter, result, { mode, delta: request.exclude.size > 0, seconds, ...(tool ? { tool } : {}) });
  } finally {
    reporter.stop();
    close();
  }
}

/** `--dry-run`: what the export would carry and download, checked as a real run checks it; nothing written. */
async function printPlan(
  argv: ArgumentsCamelCase<ExportArgs>,
  reporter: Reporter,
  request: Omit<ExportRequest, 'mode' | 'sourceDateEpoch'>,
  mirrors: Mirror[],
): Promise<void> {
  const { client, close } = buildClient(argv, { mirrors });
  try {
    const events = progressEvents(reporter, { kind: 'in-place' }, request.platforms, {
      ...argv,
      policy: request.signatures,
    });
    const plan = await planExport(
      client,
      { ...request, mode: { kind: 'in-place' } },
      {
        ...events,
        blobQueued: undefined,
      },
    ).catch((err: unknown) => {
      if (err instanceof SignaturePolicyRefusal) throw new CheckFailed(err.message, ExitCode.unsigned);
      throw err;
    });
    reporter.stop();
    const carried = carriedBytes(plan.blobs);
    const summary = {
      dryRun: true,
      output: request.output,
      images: plan.images.filter((i) => !i.artifact).length,
      artifacts: plan.images.filter((i) => i.artifact).length,
      blobs: plan.blobs.length,
      bundleBytes: carried,
      downloadBytes: plan.fetched.bytes,
    };
    reporter.result(summary);
    reporter.info(
      `would write ${printable(request.output)}: ${summary.images} images and ${summary.artifacts} signatures and other artifacts, ${summary.blobs} blobs, ${formatBytes(carried)} (${formatBytes(summary.downloadBytes)} to download); the space is there. Nothing was fetched or written.`,
    );
  } finally {
    reporter.stop();
    close();
  }
}

/**
 * The options and the spec, read and checked in this order (the image sources'
 * warnings reported): the export asked for, less its mode and creation time.
 */
async function parseExportArgs(
  argv: ArgumentsCamelCase<ExportArgs>,
  reporter: Reporter,
): Promise<{
  request: Omit<ExportRequest, 'mode' | 'sourceDateEpoch'>;
  mirrors: Mirror[];
  volumeSize: number | undefined;
  files: FileRequest[];
  /** The charts asked for, already packaged as the artifacts the bundle carries. */
  charts: BuiltArtifact[];
}> {
  const loaded = await loadSpec(argv.spec);
  const spec = loaded?.spec;
  const outputArg = argv.output ?? spec?.output;
  if (!outputArg) throw new UsageError('no output file: pass -o NAME.tar (or "output" in the spec)');
  const output = resolve(outputArg);
  const factory = await factoryInputs(argv);
  for (const note of factory?.notes ?? []) reporter.info(note);
  const files = [...checkedFileRequests(argv, spec), ...factoryFiles(factory)];
  const chartPrefix = parseChartPrefix(argv['chart-prefix']);
  const {
    references: refs,
    warnings,
    charts,
  } = await gatherReferences(
    { ...argv, 'chart-prefix': chartPrefix },
    loaded,
    (factory?.images ?? []).map((input) => ({ input, origin: { source: 'the Image Factory schematic' } })),
  );
  for (const w of warnings) reporter.warn(w);
  if (refs.length > MAX_IMAGES)
    throw new UsageError(
      `${refs.length} image references, more than the ${MAX_IMAGES} one bundle holds; split the list into several bundles`,
    );
  const platforms = parsePlatforms(argv.platform.length > 0 ? argv.platform : (spec?.platforms ?? []));
  const mirrors = parseMirrors([...argv['registry-mirror'], ...(spec?.mirrors ?? [])]);
  await checkOutputDir(output);
  const { exclude, sources: deltaAgainst } = await loadExclusions(argv['exclude-receipt'], argv['exclude-bundle']);
  const signer = await loadSigner(argv['sign-key']);
  const signatures = await signatureOptionsFrom(argv);
  if (signatures && !argv.signatures)
    throw new UsageError('--verify-signatures checks the signatures export finds; it cannot go with --no-signatures');
  let volumeSize: number | undefined;
  try {
    volumeSize = argv['volume-size'] !== undefined ? parseVolumeSize(argv['volume-size']) : undefined;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const request = {
    refs,
    output,
    ...(platforms ? { platforms } : {}),
    concurrency: argv.concurrency,
    retries: argv.retries,
    artifacts: argv.signatures,
    ...(signatures ? { signatures } : {}),
    exclude,
    deltaAgainst,
    ...(signer ? { sign: signer } : {}),
  };
  return { request, mirrors, volumeSize, files, charts: charts.map((c) => c.artifact) };
}

/**
 * The Image Factory's boot media as carried files: URLs the tool names, which
 * the factory publishes no checksum for, so carried unpinned, digests recorded.
 */
function factoryFiles(factory: FactoryInputs | undefined): FileRequest[] {
  return (factory?.files ?? []).map((f) => ({
    source: { kind: 'url', url: f.url },
    name: f.name,
    origin: '--talos-boot-media',
    namedByTool: true,
  }));
}

/** What the export says while it runs. */
function progressEvents(
  reporter: Reporter,
  mode: ExportMode,
  platforms: Platform[] | undefined,
  shown: { json: boolean; quiet: boolean; policy: SignatureOptions | undefined },
): ExportEvents {
  return {
    signatures: (results) => {
      if (!shown.json && shown.policy) printSignatures(results, shown.policy, shown.quiet);
    },
    start: (refs) => {
      reporter.info(
        `${refs.length} image reference${refs.length > 1 ? 's' : ''}${platforms ? ` for ${platforms.map(formatPlatform).join(', ')}` : ''}:`,
      );
      for (const r of refs) reporter.info(`  ${r.name}  (from ${r.origins.map(formatOrigin).join('; ')})`);
    },
    warn: (message) => reporter.warn(message),
    resolved: (ref, im) =>
      reporter.info(
        im.artifact
          ? `found ${im.artifact.kind} ${ref} for ${im.artifact.of}`
          : `resolved ${ref} ${im.digest.slice(0, 19)} ${im.platforms.filter((p) => p.carried).length || 1} manifest(s), ${formatBytes(im.bytes)}`,
      ),
    blobQueued: (t) => {
      if (t.cached > 0)
        reporter.info(
          `${t.cached} of ${t.count} blobs (${formatBytes(t.cachedBytes)}) already ${mode.kind !== 'in-place' ? 'in the cache' : `in the partial bundle of an earlier run`}`,
        );
      reporter.startBytes('fetch', 'fetching blobs', t.bytes - t.cachedBytes);
    },
    blobProgress: (n) => reporter.advance('fetch', n),
    writing: (path, bytes) => reporter.startBytes('write', `writing ${basename(path)}`, bytes),
    writeProgress: (n) => reporter.advance('write', n),
    collected: () => reporter.stop(),
    volumesPlanned: (count, size) => reporter.info(`${count} volumes of at most ${formatBytes(size)}`),
    volumeWritten: () => reporter.stop(),
    partialKept: (path) => reporter.warn(`the partial bundle ${path} is kept: rerun the same command to resume`),
  };
}

/** The closing lines, and the `--json` result. */
function reportExport(
  reporter: Reporter,
  result: ExportResult,
  run: { mode: ExportMode; delta: boolean; seconds: number; tool?: ToolCopyReport },
): void {
  const { images, blobs, written } = result;
  const totalBytes = carriedBytes(blobs);
  const externalBytes = blobs.filter((b) => b.external).reduce((s, b) => s + b.size, 0);
  const shared = images.reduce((s, im) => s + im.bytes, 0) - totalBytes - externalBytes;
  if (run.delta)
    reporter.info(
      `delta: ${blobs.filter((b) => b.external).length} blobs (${formatBytes(externalBytes)}) left out, already on the isolated side`,
    );
  for (const w of written)
    reporter.info(`wrote ${w.path} (${formatBytes(w.bytes)}), checksum ${w.sidecar}: sha256 ${w.sha256}`);
  reporter.info(
    `${images.length} images, ${blobs.length} blobs, ${formatBytes(Math.max(0, shared))} saved by shared blobs, in ${run.seconds.toFixed(1)}s`,
  );
  const first = written[0]!;
  reporter.result({
    bundle: first.path,
    sidecar: first.sidecar,
    bytes: written.reduce((s, w) => s + w.bytes, 0),
    sha256: first.sha256,
    integrity: first.integrity,
    ...(run.mode.kind === 'volumes'
      ? {
          volumes: written.map((w) => ({
            path: w.path,
            sidecar: w.sidecar,
            bytes: w.bytes,
            sha256: w.sha256,
            integrity: w.integrity,
          })),
        }
      : {}),
    ...(run.tool ? { tool: run.tool } : {}),
    seconds: run.seconds,
    images: images.map((im) => ({
      reference: im.reference,
      digest: im.digest,
      mediaType: im.mediaType,
      bytes: im.bytes,
      platforms: im.platforms.filter((p) => p.carried).map((p) => p.platform),
    })),
    blobs: blobs.length,
    fetched: result.fetched,
    cached: result.cached,
  });
}

function parseSourceDateEpoch(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got "${value}"`);
  return Number(value);
}
