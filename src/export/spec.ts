import { dirname, resolve } from 'node:path';
import yaml from 'js-yaml';
import { UserInputError } from '../util/user-input.js';
import { fileRequest, parseFileArgument, type FileRequest } from '../files/request.js';
import { parseSpecCharts } from '../charts/spec.js';
import type { ChartRequest } from '../charts/request.js';

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
 * files:                            # carried beside the images (see docs/files.md)
 *   - source: https://example.com/talosctl-linux-amd64
 *     sha256: 4f3c…                 # required for a URL unless --allow-unpinned
 *     name: talosctl                # default: the URL's or path's file name
 *     mode: '0755'                  # default: a path's own, 0644 for a URL
 *   - ./metal-amd64.iso#sha256=…    # or the --file form; paths relative to the spec file
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
  /** Files to carry, sources that are paths resolved against the spec's folder; absent when none. */
  files?: FileRequest[];
  /** Helm charts to carry (src/charts/spec.ts reads the entries); absent when none. */
  charts?: ChartRequest[];
}

export class SpecError extends UserInputError {
  override name = 'SpecError';
}

const KEYS = [
  'images',
  'imagesFiles',
  'manifests',
  'talosConfigs',
  'platforms',
  'mirrors',
  'output',
  'files',
  'charts',
] as const;

/** Most entries a spec's `files:` may list: a bundle of files is a handful, not a mirror of a web site. */
const MAX_SPEC_FILES = 1000;

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
    ...(obj.files !== undefined && obj.files !== null ? { files: specFiles(obj.files, file, baseDir) } : {}),
    ...(obj.charts !== undefined && obj.charts !== null ? { charts: parseSpecCharts(obj.charts, file, baseDir) } : {}),
    ...(typeof obj.output === 'string' ? { output: resolve(baseDir, obj.output) } : {}),
  };
}

/** The `files:` list: each entry a mapping (`source`, `sha256`, `name`, `mode`) or a string in the `--file` form. */
function specFiles(value: unknown, file: string, baseDir: string): FileRequest[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value))
    throw new SpecError(`${file}: "files" must be a list of files (source, sha256, name, mode)`);
  if (value.length > MAX_SPEC_FILES) throw new SpecError(`${file}: "files" lists more than ${MAX_SPEC_FILES} files`);
  return value.map((entry: unknown, i) => {
    const where = `${file} files[${i}]`;
    const request = typeof entry === 'string' ? parseFileArgument(entry, where) : fileEntry(entry, where);
    if (request.source.kind === 'url') return request;
    return { ...request, source: { kind: 'path' as const, path: resolve(baseDir, request.source.path) } };
  });
}

const FILE_KEYS = ['source', 'sha256', 'name', 'mode'];

function fileEntry(entry: unknown, where: string): FileRequest {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    throw new SpecError(
      `${where}: a file is a mapping with keys ${FILE_KEYS.join(', ')}, or a string SOURCE[#sha256=HEX][@NAME]`,
    );
  const e = entry as Record<string, unknown>;
  const unknown = Object.keys(e).find((k) => !FILE_KEYS.includes(k));
  if (unknown !== undefined)
    throw new SpecError(`${where}: unknown key "${unknown}" (allowed: ${FILE_KEYS.join(', ')})`);
  if (typeof e.source !== 'string') throw new SpecError(`${where}: "source" must be a URL or a path`);
  if (e.sha256 !== undefined && typeof e.sha256 !== 'string')
    throw new SpecError(`${where}: "sha256" must be a string of 64 hex digits`);
  if (e.name !== undefined && typeof e.name !== 'string') throw new SpecError(`${where}: "name" must be a file name`);
  const sha256 = typeof e.sha256 === 'string' ? `sha256:${e.sha256.replace(/^sha256:/, '').toLowerCase()}` : undefined;
  const mode = e.mode !== undefined ? fileMode(e.mode, where) : undefined;
  return fileRequest(
    {
      source: e.source,
      ...(sha256 !== undefined ? { sha256 } : {}),
      ...(typeof e.name === 'string' ? { name: e.name } : {}),
      ...(mode !== undefined ? { mode } : {}),
    },
    where,
  );
}

/**
 * A mode as a quoted octal string (`'0755'`, `'755'`, `'0o755'`). A number is
 * refused: an unquoted `0755` or `400` is a decimal number to a YAML 1.2
 * reader, and reading it as other permission bits than meant would be silent.
 */
function fileMode(value: unknown, where: string): number {
  if (typeof value === 'string' && /^(?:0o?)?[0-7]{1,3}$/.test(value))
    return parseInt(value.replace(/^0o?/, '') || '0', 8);
  throw new SpecError(`${where}: "mode" must be permission bits as a quoted octal string, e.g. mode: '0755'`);
}
