import yaml from 'js-yaml';
import { printable } from '../util/text.js';
import { ChartError } from './errors.js';

/** What one YAML document of a chart may cost: its text, and the values it expands to. */
export interface YamlBounds {
  maxBytes: number;
  /**
   * Nodes visited when the document is walked with every alias expanded: an
   * alias bomb (`a: &a [x,x]`, `b: &b [*a,*a]`, …) is small as text and as
   * parsed objects (aliases are shared), and explodes in whatever walks it
   * (image discovery, a merge, a serialiser). Counting each visit bounds them all.
   */
  maxNodes: number;
  maxDepth: number;
}

/** Chart.yaml, values.yaml, Chart.lock, requirements.yaml: real ones are a few KiB to a few hundred KiB. */
export const CHART_YAML_BOUNDS: YamlBounds = { maxBytes: 4 << 20, maxNodes: 500_000, maxDepth: 64 };

/** A repository's index.yaml: large public ones (bitnami's had ~20 MiB) stay under this. */
export const INDEX_YAML_BOUNDS: YamlBounds = { maxBytes: 64 << 20, maxNodes: 5_000_000, maxDepth: 16 };

/** YAML 1.2 core types (no timestamps or binaries turning into objects) plus `<<` merge keys, which Helm reads. */
const SCHEMA = yaml.CORE_SCHEMA.extend([(yaml as unknown as { types: { merge: yaml.Type } }).types.merge]);

/**
 * One YAML document, parsed and walked within `bounds`; `where` names it in
 * the error (a ChartError: the caller decides whether that is the user's file
 * or a download). An empty document is null.
 */
export function parseBoundedYaml(text: Buffer | string, where: string, bounds: YamlBounds): unknown {
  const size = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
  if (size > bounds.maxBytes)
    throw new ChartError(`${where}: ${size} bytes of YAML, more than the ${bounds.maxBytes} allowed`);
  let doc: unknown;
  try {
    doc = yaml.load(typeof text === 'string' ? text : text.toString('utf8'), { schema: SCHEMA, json: false });
  } catch (err) {
    throw new ChartError(`${where}: not valid YAML: ${printable((err as Error).message.split('\n')[0] ?? '', 200)}`);
  }
  checkExpandedSize(doc, where, bounds);
  return doc ?? null;
}

/** Walks `doc` as a reader would, aliases expanded, and stops at the first bound passed. */
function checkExpandedSize(doc: unknown, where: string, bounds: YamlBounds): void {
  const stack: Array<{ value: unknown; depth: number }> = [{ value: doc, depth: 0 }];
  let visited = 0;
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (++visited > bounds.maxNodes)
      throw new ChartError(
        `${where}: expands to more than ${bounds.maxNodes} values (YAML aliases repeated, an "alias bomb"?); refused`,
      );
    if (depth > bounds.maxDepth)
      throw new ChartError(`${where}: nested deeper than ${bounds.maxDepth} levels; refused`);
    if (value === null || typeof value !== 'object') continue;
    const children = Array.isArray(value) ? value : Object.values(value as Record<string, unknown>);
    for (const child of children) stack.push({ value: child, depth: depth + 1 });
  }
}

/** Whether `v` is a YAML mapping (a plain object). */
export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
