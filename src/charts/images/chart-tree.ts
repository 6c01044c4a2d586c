/**
 * A chart and its subcharts as Helm renders them: each subchart under the
 * name its parent's values know it by (its alias, else its name; one
 * vendored chart may appear under several aliases), with the values it
 * renders with, and whether its dependency's condition or tags switch it off.
 */
import type { LoadedChart } from '../chart.js';
import { dependencyDecision } from './conditions.js';
import { subchartValues, type Values } from './values.js';

/** Most charts one tree may hold, and its deepest nesting: past them the rest is not read. */
export const MAX_TREE_CHARTS = 256;
export const MAX_TREE_DEPTH = 12;

export interface ChartNode {
  chart: LoadedChart;
  /** `''` for the chart itself, `zookeeper`, `kafka/zookeeper` below it: the scopes from the top. */
  path: string;
  /** The values it renders with (the user's files merged in, scoped). */
  values: Values;
  /** Why it is not rendered with these values (`zookeeper.enabled is false`); absent when it is. */
  off?: string;
  /** Its subcharts' scopes (alias or name), for the values walk to leave to them. */
  childScopes: Set<string>;
  /** Why a child, by scope or chart name, is off. */
  childOff: Map<string, string>;
}

interface Pending {
  chart: LoadedChart;
  path: string;
  values: Values;
  off: string | undefined;
  depth: number;
}

/** The subcharts of `p` with the scope each renders under, matched to its dependency entry when it has one. */
function children(p: Pending, topValues: Values, warnings: string[]): Array<Pending & { scope: string }> {
  const out: Array<Pending & { scope: string }> = [];
  const matched = new Set<LoadedChart>();
  const at = p.path === '' ? 'the chart' : p.path;
  for (const dep of p.chart.metadata.dependencies) {
    const sub = p.chart.subcharts.find((s) => s.metadata.name === dep.name);
    if (!sub) {
      warnings.push(`${at}: dependency ${dep.name} is not in charts/; its images are not seen`);
      continue;
    }
    matched.add(sub);
    const scope = dep.alias ?? dep.name;
    const decision = dependencyDecision(dep, p.values, topValues);
    const off = p.off ?? (decision && !decision.enabled ? `${decision.by} is false` : undefined);
    out.push(child(p, sub, scope, off));
  }
  for (const sub of p.chart.subcharts) if (!matched.has(sub)) out.push(child(p, sub, sub.metadata.name, p.off));
  return out;
}

function child(p: Pending, sub: LoadedChart, scope: string, off: string | undefined): Pending & { scope: string } {
  return {
    chart: sub,
    scope,
    path: p.path === '' ? scope : `${p.path}/${scope}`,
    values: subchartValues(p.values, scope, sub.values),
    off,
    depth: p.depth + 1,
  };
}

/** Every chart of the tree, the top first, each with its scoped values and whether it is on. */
export function chartTree(root: LoadedChart, topValues: Values, warnings: string[]): ChartNode[] {
  const nodes: ChartNode[] = [];
  const queue: Pending[] = [{ chart: root, path: '', values: topValues, off: undefined, depth: 0 }];
  while (queue.length > 0) {
    const p = queue.shift()!;
    if (nodes.length >= MAX_TREE_CHARTS || p.depth > MAX_TREE_DEPTH) {
      warnings.push(
        `more than ${MAX_TREE_CHARTS} subcharts or nesting deeper than ${MAX_TREE_DEPTH}; the rest is not read`,
      );
      break;
    }
    const kids = children(p, topValues, warnings);
    const childOff = new Map<string, string>();
    for (const k of kids) {
      if (k.off) childOff.set(k.scope, k.off).set(k.chart.metadata.name, k.off);
      queue.push(k);
    }
    nodes.push({
      chart: p.chart,
      path: p.path,
      values: p.values,
      ...(p.off ? { off: p.off } : {}),
      childScopes: new Set(kids.map((k) => k.scope)),
      childOff,
    });
  }
  return nodes;
}
