/**
 * `--render`: the chart rendered by Helm itself (`helm template`) with the
 * values files given and `--kube-version`, its output read by the same
 * manifest scanner as `--from-manifests`. This is the exact answer for those
 * values: every template, helper and subchart condition evaluated by Helm's
 * own engine, which exists only in Go. Helm is not shipped with this tool: it
 * must be on PATH, and a clear error says so when it is not.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { imagesFromManifests, ManifestError } from '../../sources/kubernetes.js';
import { UserInputError } from '../../util/user-input.js';
import { printable } from '../../util/text.js';
import type { ImageFinding } from './finding.js';

/** Largest rendering read (an operator chart with its CRDs is a few MiB). */
export const MAX_RENDER_BYTES = 64 << 20;
/** How long one `helm template` may take. */
export const RENDER_TIMEOUT_MS = 5 * 60_000;

const KUBE_VERSION = /^v?\d{1,3}\.\d{1,3}(\.\d{1,4})?$/;

export class RenderError extends UserInputError {
  override name = 'RenderError';
}

/** `--kube-version`, checked: `1.31`, `v1.31.2`. */
export function checkKubeVersion(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!KUBE_VERSION.test(v))
    throw new RenderError(`--kube-version "${printable(v, 40)}" is not a Kubernetes version (e.g. 1.31 or v1.31.2)`);
  return v;
}

/** The `helm` executable on PATH, or undefined. */
export function findHelm(path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue;
    const file = join(dir, 'helm');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The arguments of `helm template` for a chart archive, its values files and a Kubernetes version. */
export function helmTemplateArgs(chartFile: string, valuesFiles: readonly string[], kubeVersion?: string): string[] {
  return [
    'template',
    'release',
    chartFile,
    // `--flag=value`: a file name starting with "-" is never read as a flag.
    ...valuesFiles.map((f) => `--values=${f}`),
    ...(kubeVersion ? [`--kube-version=${kubeVersion}`] : []),
  ];
}

function run(helm: string, args: string[], label: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(helm, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: RENDER_TIMEOUT_MS });
    const out: Buffer[] = [];
    let size = 0;
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_RENDER_BYTES) child.kill('SIGKILL');
      else out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4096)));
    child.on('error', (err) => reject(new RenderError(`${label}: cannot run ${helm}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (size > MAX_RENDER_BYTES)
        return reject(new RenderError(`${label}: helm template wrote more than ${MAX_RENDER_BYTES} bytes; refused`));
      if (code !== 0) {
        const line = stderr.trim().split('\n').pop() ?? '';
        const why = signal ? `was stopped (${signal})` : `failed (exit ${code})`;
        return reject(new RenderError(`${label}: helm template ${why}: ${printable(line, 300)}`));
      }
      resolve(Buffer.concat(out).toString('utf8'));
    });
  });
}

/**
 * Renders the chart (the `.tgz` as carried, written to a private temporary
 * folder that is removed afterwards) and lists the images of its workloads.
 */
export async function renderedImages(
  tgz: Buffer,
  label: string,
  valuesFiles: readonly string[],
  kubeVersion: string | undefined,
): Promise<ImageFinding[]> {
  const helm = findHelm();
  if (!helm)
    throw new RenderError(
      `${label}: --render runs helm template, and no helm is on PATH; install Helm 3, or leave out --render to read the chart's annotations and values`,
    );
  const dir = await mkdtemp(join(tmpdir(), 'airgap-render-'));
  try {
    const chartFile = join(dir, 'chart.tgz');
    await writeFile(chartFile, tgz, { mode: 0o600 });
    const text = await run(helm, helmTemplateArgs(chartFile, valuesFiles, kubeVersion), label);
    try {
      return imagesFromManifests(text, `${label} rendered`).map((f) => ({
        image: f.image,
        how: `rendered ${f.where}`,
      }));
    } catch (err) {
      if (err instanceof ManifestError) throw new RenderError(`${label}: helm template printed ${err.message}`);
      throw err;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
