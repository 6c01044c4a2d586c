/**
 * When a part of a chart is switched on, decided as Helm decides it for a
 * dependency (pkg/chartutil/dependencies.go): a `condition` is a comma
 * separated list of value paths, the first that holds a boolean decides and
 * the others are ignored; `tags` switch a dependency on when any of them is
 * true in the top-level `tags:` block and off when all that are set are false;
 * a condition that decides overrides the tags; nothing decided means on.
 * HIP-0015 image entries reuse the same `condition` form.
 */
import type { ChartDependency } from '../chart.js';
import { isMap, own, valueAt, type Values } from './values.js';

/** What a condition said: on or off and the path that decided, or nothing decided. */
export interface Decision {
  enabled: boolean;
  /** `postgresql.enabled`, or `tags.metrics`. */
  by: string;
}

/** The first path of `condition` that holds a boolean in `values`, or undefined. */
export function evaluateCondition(condition: string | undefined, values: Values): Decision | undefined {
  if (!condition) return undefined;
  for (const raw of condition.split(',')) {
    const path = raw.trim();
    if (path === '') continue;
    const value = valueAt(values, path);
    if (typeof value === 'boolean') return { enabled: value, by: path };
  }
  return undefined;
}

/** What the top-level `tags:` block says of a dependency's tags, or undefined when none is set. */
export function evaluateTags(tags: readonly string[] | undefined, topLevel: Values): Decision | undefined {
  if (!tags || tags.length === 0) return undefined;
  const block = own(topLevel, 'tags') && isMap(topLevel.tags) ? topLevel.tags : {};
  let off: string | undefined;
  for (const tag of tags) {
    const value = own(block, tag) ? block[tag] : undefined;
    if (value === true) return { enabled: true, by: `tags.${tag}` };
    if (value === false) off ??= `tags.${tag}`;
  }
  return off ? { enabled: false, by: off } : undefined;
}

/** Whether a dependency renders: its condition against the parent's values, else its tags, else on. */
export function dependencyDecision(
  dep: Pick<ChartDependency, 'condition' | 'tags'>,
  parentValues: Values,
  topLevel: Values,
): Decision | undefined {
  return evaluateCondition(dep.condition, parentValues) ?? evaluateTags(dep.tags, topLevel);
}
