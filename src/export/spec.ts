import { dirname, resolve } from 'node:path';
import yaml from 'js-yaml';
import { UserInputError } from '../util/user-input.js';

/**
 * A bundle spec: everything `export` needs, in one reviewable file.
 *
 * ```yaml
 * output: talos-v1.8.0.tar          # relative to the spec file
 * platforms: [linux/amd64, linux/arm64]
 * images:
 *   - ghcr.io/siderolabs/installer:v1.8.0
 * imagesFiles:                      # talosctl-images format, relative to the spec file
 *   - talos-v1.8.0.images
 * manifests:                        # Kubernetes YAML files or folders
 *   - workloads/
 * talosConfigs:                     # Talos machine configs
 *   - controlplane.yaml
 * mirrors:                          # registry host (or '*') -> mirror URL
 *   '*': http://127.0.0.1:5001
 * ```
 */
export interface BundleSpec {
  images: string[];
  imagesFiles: string[];
  manifests: string[];
  talosConfigs: string[];
  platforms: string[];
  /** `HOST=URL` entries, the same form as `--registry-mirror`. */
  mirrors: string[];
  output?: string;
}

export class SpecError extends UserInputError {
  override name = 'SpecError';
}

const KEYS = ['images', 'imagesFiles', 'manifests', 'talosConfigs', 'platforms', 'mirrors', 'output'] as const;

/** Validates a parsed spec. Paths are resolved against `baseDir` (the spec's folder). */
export function parseSpec(text: string, file: string): BundleSpec {
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: file, schema: yaml.CORE_SCHEMA });
  } catch (err) {
    throw new SpecError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === undefined || doc === null) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new SpecError(`${file}: a bundle spec must be a YAML mapping with keys ${KEYS.join(', ')}`);
  const obj = doc as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new SpecError(`${file}: unknown key "${key}" (allowed: ${KEYS.join(', ')})`);
    }
  }
  const baseDir = dirname(resolve(file));
  const strings = (key: string): string[] => {
    const v = obj[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      throw new SpecError(`${file}: "${key}" must be a list of strings`);
    return v as string[];
  };
  let mirrors: string[] = [];
  const m = obj.mirrors;
  if (Array.isArray(m)) mirrors = strings('mirrors');
  else if (m !== undefined && m !== null) {
    if (typeof m !== 'object' || Object.values(m).some((u) => typeof u !== 'string')) {
      throw new SpecError(
        `${file}: "mirrors" must map a registry host (or '*') to a URL, e.g. '*': http://10.5.0.1:6000`,
      );
    }
    mirrors = Object.entries(m as Record<string, string>).map(([host, url]) => `${host}=${url}`);
  }
  if (obj.output !== undefined && typeof obj.output !== 'string')
    throw new SpecError(`${file}: "output" must be a file path`);
  return {
    images: strings('images'),
    imagesFiles: strings('imagesFiles').map((f) => (f === '-' ? f : resolve(baseDir, f))),
    manifests: strings('manifests').map((f) => resolve(baseDir, f)),
    talosConfigs: strings('talosConfigs').map((f) => resolve(baseDir, f)),
    platforms: strings('platforms'),
    mirrors,
    ...(typeof obj.output === 'string' ? { output: resolve(baseDir, obj.output) } : {}),
  };
}
