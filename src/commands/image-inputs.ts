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
import { missingInstallerWarning } from '../sources/talos-hints.js';
import { parseSpec, type BundleSpec } from '../export/spec.js';
import { UsageError } from './errors.js';
import { printable } from '../util/text.js';

/** The options every command that builds an image list shares (export, images). */
export interface ImageSourceArgs {
  images: string[];
  'images-file': string[];
  'from-manifests': string[];
  'from-talos-config': string[];
  spec?: string;
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
}

/**
 * Every image reference of a run, from arguments, list files (`-` = stdin),
 * Kubernetes manifests, Talos machine configs and the spec, merged. Every
 * invalid entry is reported at once, with where it came from, before anything
 * is downloaded.
 */
export async function gatherReferences(
  argv: ImageSourceArgs,
  spec: { file: string; spec: BundleSpec } | undefined,
): Promise<GatheredReferences> {
  const inputs: Array<{ input: string; origin: Origin }> = [];
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

  const { references, problems: invalid } = collectReferences(inputs);
  for (const p of invalid) problems.push(`  ${formatOrigin(p.origin)}: "${printable(p.input)}": ${p.reason}`);
  if (problems.length > 0) {
    throw new UsageError(
      `${problems.length} problem${problems.length > 1 ? 's' : ''} in the image sources; nothing was downloaded:\n${problems.join('\n')}`,
    );
  }
  if (references.length === 0) {
    throw new UsageError(
      'no image references given: pass them as arguments, with -f FILE (one per line, - for stdin), --from-manifests, --from-talos-config, or --spec FILE.yaml',
    );
  }
  const installer = missingInstallerWarning(references.map((r) => r.ref));
  if (installer) warnings.push(installer);
  return { references, warnings };
}
