/**
 * Images a chart lists in its Chart.yaml annotations, where its maintainers
 * keep them for tools like this one: `helm.sh/images` (HIP-0015), Artifact
 * Hub's `artifacthub.io/images`, and the bare `images` key HIP-0015's own
 * example and older Bitnami charts use. Each holds a YAML list of
 * `{name, image}` entries; `condition` (a value path, as a dependency's) is
 * evaluated against the chart's values, and `dependency` ties the entry to a
 * subchart, so that it is off when that subchart is.
 */
import { ChartError } from '../errors.js';
import { parseBoundedYaml } from '../yaml.js';
import { evaluateCondition } from './conditions.js';
import type { ImageFinding } from './finding.js';
import { isMap, type Values } from './values.js';

/** The annotation keys read, in this order. */
export const IMAGE_ANNOTATIONS = ['helm.sh/images', 'artifacthub.io/images', 'images'] as const;

/** Most entries read from one annotation. */
export const MAX_ANNOTATION_ENTRIES = 1000;
const ANNOTATION_BOUNDS = { maxBytes: 256 * 1024, maxNodes: 20_000, maxDepth: 8 };

export interface AnnotationContext {
  /** The chart's values (merged, scoped), for `condition`. */
  values: Values;
  /** Why a subchart, by name or alias, is off; absent for those that are on. */
  subchartOff: (name: string) => string | undefined;
}

export interface AnnotationResult {
  findings: ImageFinding[];
  warnings: string[];
}

function entriesOf(key: string, text: string, warnings: string[]): unknown[] {
  let doc: unknown;
  try {
    doc = parseBoundedYaml(text, `annotation ${key}`, ANNOTATION_BOUNDS);
  } catch (err) {
    if (!(err instanceof ChartError)) throw err;
    warnings.push(`${err.message}; not read`);
    return [];
  }
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) {
    warnings.push(`annotation ${key} is not a YAML list of images; not read`);
    return [];
  }
  if (doc.length > MAX_ANNOTATION_ENTRIES) {
    warnings.push(`annotation ${key} lists more than ${MAX_ANNOTATION_ENTRIES} images; the rest was not read`);
    return doc.slice(0, MAX_ANNOTATION_ENTRIES);
  }
  return doc;
}

function findingOf(key: string, entry: unknown, ctx: AnnotationContext, warnings: string[]): ImageFinding | undefined {
  const e = isMap(entry) ? entry : { image: entry };
  if (typeof e.image !== 'string' || e.image.trim() === '') {
    warnings.push(`annotation ${key}: an entry has no image; skipped`);
    return undefined;
  }
  const image = e.image.trim().replace(/^\/+/, '');
  const name = typeof e.name === 'string' ? ` (${e.name})` : '';
  const how = `annotation ${key}${name}`;
  const dependency = typeof e.dependency === 'string' ? e.dependency : undefined;
  const subOff = dependency !== undefined ? ctx.subchartOff(dependency) : undefined;
  if (subOff) return { image, how, off: subOff };
  const condition = typeof e.condition === 'string' ? e.condition : undefined;
  const decision = evaluateCondition(condition, ctx.values);
  if (decision && !decision.enabled) return { image, how, off: `${decision.by} is false` };
  return { image, how };
}

/** The images the chart's own annotations list, each with whether its condition holds. */
export function imagesFromAnnotations(annotations: Record<string, string>, ctx: AnnotationContext): AnnotationResult {
  const out: AnnotationResult = { findings: [], warnings: [] };
  for (const key of IMAGE_ANNOTATIONS) {
    const text = Object.prototype.hasOwnProperty.call(annotations, key) ? annotations[key] : undefined;
    if (typeof text !== 'string' || text.trim() === '') continue;
    for (const entry of entriesOf(key, text, out.warnings)) {
      const f = findingOf(key, entry, ctx, out.warnings);
      if (f) out.findings.push(f);
    }
  }
  return out;
}
