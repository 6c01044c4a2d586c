import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Argv } from 'yargs';
import {
  collectReferences,
  formatOrigin,
  parseImageListText,
  type ListedReference,
  type Origin,
} from '../reference/image-list.js';
import { imagesFromManifests, ManifestError } from '../sources/kubernetes.js';
import { imagesFromTalosConfig } from '../sources/talos-config.js';
import { installerWarnings } from '../sources/talos-hints.js';
import { parseSpec, type BundleSpec } from '../export/spec.js';
import { UsageError } from './errors.js';
import { printable } from '../util/text.js';
import type { ChartContext } from '../charts/context.js';
import { DEFAULT_CHART_PREFIX } from '../charts/helm-artifact.js';
import { parseChartArguments, type ChartRequest } from '../charts/request.js';
import { resolveCharts, type ResolvedChart } from '../charts/resolve.js';
import type { ChartImage } from '../charts/images/discover.js';
import { checkKubeVersion } from '../charts/images/render.js';
import { discoverResolvedCharts, requestValues } from '../charts/images/requested-charts.js';
import { buildClient, parseMirrors, type RegistryArgs } from './registry-options.js';

/** The options every command that builds an image list shares (export, images). */
export interface ImageSourceArgs {
  images: string[];
  'images-file': string[];
  'from-manifests': string[];
  'from-talos-config': string[];
  spec?: string;
  /** The words of every --chart, in order (see parseChartArguments). */
  chart: string[];
  'chart-values': string[];
  'chart-all-images': boolean;
  render: boolean;
  'kube-version'?: string;
}

/**
 * What gathering needs to reach registries and chart repositories: the
 * registry options every such command has, and the mirrors and chart prefix
 * of commands that have them (export).
 */
export interface GatherArgs extends ImageSourceArgs, RegistryArgs {
  'registry-mirror'?: string[];
  'chart-prefix'?: string;
  /** export's carried files: a bundle of files alone is a bundle too. */
  file?: string[];
}

const repeatable = (v: string | string[]) => ([] as string[]).concat(v);

export function imageSourceOptions<T>(y: Argv<T>) {
  return (
    y
      .positional('images', {
        type: 'string',
        array: true,
        default: [],
        describe: 'Image references (busybox:1.36, ghcr.io/siderolabs/installer:v1.8.0, repo@sha256:…)',
      })
      // Not `array: true`: yargs drops a lone "-" from array options; repeated flags still collect.
      .option('images-file', {
        alias: 'f',
        type: 'string',
        default: [] as string[],
        coerce: repeatable,
        describe: 'File with one reference per line, as `talosctl images` prints (- for stdin; repeatable)',
      })
      .option('from-manifests', {
        type: 'string',
        default: [] as string[],
        coerce: repeatable,
        describe: 'Kubernetes YAML file or folder: every container image of Pods and workloads (repeatable)',
      })
      .option('from-talos-config', {
        type: 'string',
        default: [] as string[],
        coerce: repeatable,
        describe: 'Talos machine config: the images it names, inline manifests included (repeatable)',
      })
      .option('spec', {
        type: 'string',
        describe: 'Bundle spec YAML (images, imagesFiles, manifests, talosConfigs, platforms, mirrors, output)',
      })
      .option('chart', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe:
          'Helm chart and the images it deploys: URL NAME[@VERSION|RANGE], oci://HOST/PATH/NAME[@VERSION|RANGE], or a chart folder or .tgz (repeatable)',
      })
      .option('chart-values', {
        type: 'string',
        default: [] as string[],
        coerce: repeatable,
        describe: 'Values file for the --chart charts, merged as helm -f merges them (repeatable; later wins)',
      })
      .option('chart-all-images', {
        type: 'boolean',
        default: false,
        describe: 'Also carry the images of chart components that are off with the values given',
      })
      .option('render', {
        type: 'boolean',
        default: false,
        describe: 'Find chart images by running helm template (helm on PATH) instead of reading the values',
      })
      .option('kube-version', {
        type: 'string',
        describe: 'Kubernetes version --render renders the charts for (helm template --kube-version)',
      })
  );
}

export async function loadSpec(file: string | undefined): Promise<{ file: string; spec: BundleSpec } | undefined> {
  if (!file) return undefined;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read spec ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  return { file, spec: parseSpec(text, file) };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
}

/** YAML and JSON files of a folder, recursively, in a stable order. */
async function manifestFiles(path: string): Promise<string[]> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new UsageError(`--from-manifests ${path}: no such file or folder`);
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const name of (await readdir(path)).sort()) {
    const full = join(path, name);
    if ((await stat(full)).isDirectory()) for (const f of await manifestFiles(full)) out.push(f);
    else if (['.yaml', '.yml', '.json'].includes(extname(name).toLowerCase())) out.push(full);
  }
  return out;
}

export interface GatheredReferences {
  references: ListedReference[];
  warnings: string[];
  /** The charts asked for, resolved: export carries `charts.map((c) => c.artifact)`. */
  charts: ResolvedChart[];
  /** Chart images off with the values given, not in `references` unless --chart-all-images. */
  offByDefault: ChartImage[];
}

/**
 * The run's registry client with the HTTP layer and authenticator under it,
 * which classic chart repositories share (their CA files, TLS settings and
 * credentials by host), built once from the registry options.
 */
function chartContext(argv: GatherArgs, warnings: string[]): { ctx: ChartContext; close: () => void } {
  // The same transport and credentials as the images: one set of options, each credential to its own origin.
  const {
    client: registry,
    http,
    auth,
    close,
  } = buildClient(argv, {
    mirrors: parseMirrors(argv['registry-mirror'] ?? []),
  });
  const ctx = {
    registry,
    http,
    auth,
    prefix: argv['chart-prefix'] ?? DEFAULT_CHART_PREFIX,
    warn: (w: string) => warnings.push(w),
  };
  return { ctx, close };
}

/** The spec's `charts:` (parsed by src/charts/spec.ts into the spec), and the --chart words with --chart-values. */
function chartRequests(argv: GatherArgs, spec: { spec: BundleSpec } | undefined): ChartRequest[] {
  const fromSpec = (spec?.spec as { charts?: ChartRequest[] } | undefined)?.charts ?? [];
  if (argv.chart.length === 0 && argv['chart-values'].length > 0)
    throw new UsageError('--chart-values applies to the --chart charts; no --chart was given');
  return [...fromSpec, ...parseChartArguments(argv.chart, argv['chart-values'])];
}

/** The images of every chart asked for, as list inputs, and what is off by default. */
async function chartInputs(
  argv: GatherArgs,
  spec: { spec: BundleSpec } | undefined,
  inputs: Array<{ input: string; origin: Origin }>,
  warnings: string[],
): Promise<{ charts: ResolvedChart[]; offByDefault: ChartImage[] }> {
  const requests = chartRequests(argv, spec);
  const kubeVersion = checkKubeVersion(argv['kube-version']);
  if (requests.length === 0) {
    if (argv.render || argv['chart-all-images'] || kubeVersion)
      throw new UsageError('--render, --kube-version and --chart-all-images apply to charts; no --chart was given');
    return { charts: [], offByDefault: [] };
  }
  const values = await requestValues(requests);
  const { ctx, close } = chartContext(argv, warnings);
  try {
    const charts = await resolveCharts(requests, ctx);
    const found = await discoverResolvedCharts(charts, values, ctx.registry, {
      render: argv.render,
      ...(kubeVersion ? { kubeVersion } : {}),
      allImages: argv['chart-all-images'],
    });
    const offByDefault: ChartImage[] = [];
    for (const chart of found) {
      for (const w of chart.warnings) warnings.push(w);
      for (const image of chart.images) {
        if (image.off) offByDefault.push(image);
        if (!image.off || argv['chart-all-images'])
          inputs.push({
            input: image.image,
            origin: { source: image.off ? `${image.from} (off: ${image.off})` : image.from },
          });
      }
    }
    return { charts, offByDefault };
  } finally {
    close();
  }
}

/**
 * Every image reference of a run, from arguments, list files (`-` = stdin),
 * Kubernetes manifests, Talos machine configs and the spec, merged. Every
 * invalid entry is reported at once, with where it came from, before anything
 * is downloaded.
 */
export async function gatherReferences(
  argv: GatherArgs,
  spec: { file: string; spec: BundleSpec } | undefined,
  /** Images another option names (the Image Factory's installer), merged like the rest. */
  extra: Array<{ input: string; origin: Origin }> = [],
): Promise<GatheredReferences> {
  const inputs: Array<{ input: string; origin: Origin }> = [...extra];
  const warnings: string[] = [];
  const problems: string[] = [];
  spec?.spec.images.forEach((input, i) => inputs.push({ input, origin: { source: `${spec.file} images[${i}]` } }));
  for (const file of [...(spec?.spec.imagesFiles ?? []), ...argv['images-file']]) {
    // A loop, not a spread: a list of a few hundred thousand lines would overflow the call stack.
    for (const entry of parseImageListText(await readText(file, 'image list'), file === '-' ? '<stdin>' : file))
      inputs.push(entry);
  }
  for (const path of [...(spec?.spec.manifests ?? []), ...argv['from-manifests']]) {
    for (const file of await manifestFiles(path)) {
      try {
        for (const f of imagesFromManifests(await readText(file, 'manifest'), file))
          inputs.push({ input: f.image, origin: { source: `${file} ${f.where}` } });
      } catch (err) {
        if (!(err instanceof ManifestError)) throw err;
        problems.push(`  ${err.message}`);
      }
    }
  }
  for (const file of [...(spec?.spec.talosConfigs ?? []), ...argv['from-talos-config']]) {
    try {
      const found = imagesFromTalosConfig(await readText(file, 'Talos config'), file);
      for (const f of found.images) inputs.push({ input: f.image, origin: { source: `${file} ${f.where}` } });
      for (const u of found.unreadable)
        warnings.push(
          `${file}: cluster.extraManifests ${u} is fetched by the cluster at boot; its images are not listed here (download it and pass it with --from-manifests)`,
        );
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      problems.push(`  ${err.message}`);
    }
  }
  argv.images.forEach((input, i) => inputs.push({ input, origin: { source: `argument ${i + 1}` } }));
  const { charts, offByDefault } =
    problems.length === 0 ? await chartInputs(argv, spec, inputs, warnings) : { charts: [], offByDefault: [] };

  const { references, problems: invalid } = collectReferences(inputs);
  for (const p of invalid) problems.push(`  ${formatOrigin(p.origin)}: "${printable(p.input)}": ${p.reason}`);
  if (problems.length > 0) {
    throw new UsageError(
      `${problems.length} problem${problems.length > 1 ? 's' : ''} in the image sources; nothing was downloaded:\n${problems.join('\n')}`,
    );
  }
  const files = (argv.file?.length ?? 0) + (spec?.spec.files?.length ?? 0);
  if (references.length === 0 && charts.length === 0 && files === 0) {
    throw new UsageError(
      `no image references given: pass them as arguments, with -f FILE (one per line, - for stdin), --from-manifests, --from-talos-config, --chart, ${argv.file !== undefined ? '--file, ' : ''}or --spec FILE.yaml`,
    );
  }
  warnings.push(...installerWarnings(references.map((r) => r.ref)));
  return { references, warnings, charts, offByDefault };
}
