/**
 * Helm's values, combined as Helm combines them before it renders a chart:
 * the user's values files merged in order (`-f a.yaml -f b.yaml`: later wins,
 * maps merged deeply), laid over the chart's values.yaml (a `null` given by
 * the user deletes the chart's default), and each subchart seeing the parent's
 * `<name or alias>:` block over its own values.yaml, with the parent's
 * `global:` block shared down (the parent's globals win). Read from Helm's
 * pkg/chartutil (coalesce.go): `MergeValues`, `CoalesceValues`, `coalesceGlobals`.
 */

/** A YAML mapping as parsed. */
export type Values = Record<string, unknown>;

/** Deepest nesting any values walk here follows: deeper is cut off (hostile charts). */
export const MAX_VALUES_DEPTH = 64;

/**
 * Most map entries one merge visits. YAML aliases share objects, so a small
 * hostile file can describe a huge tree; past this the rest is taken as it is
 * instead of merged key by key.
 */
export const MAX_MERGE_ENTRIES = 200_000;

/** What is left of a merge's entry budget, shared by its recursion. */
export interface MergeBudget {
  left: number;
}

const freshBudget = (): MergeBudget => ({ left: MAX_MERGE_ENTRIES });

/**
 * Sets an own property even for a key such as `__proto__` (values are
 * attacker input: a plain assignment of that key would replace the prototype).
 */
function put(out: Values, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Whether `key` is the map's own (a key named `constructor` or `toString` is not inherited). */
export function own(map: Values, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(map, key);
}

/** A plain mapping (not a list, not null). */
export function isMap(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * `over` merged into `base` the way Helm merges values files given with `-f`:
 * a map meets a map and they merge key by key, anything else in `over`
 * replaces what `base` had. A `null` is kept as written (it deletes the
 * chart's default later, in `coalesce`). Neither input is changed.
 */
export function mergeValueFiles(base: Values, over: Values, depth = 0, budget = freshBudget()): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const had = own(out, key) ? out[key] : undefined;
    const deeper = isMap(had) && isMap(value) && depth < MAX_VALUES_DEPTH && --budget.left > 0;
    put(out, key, deeper ? mergeValueFiles(had, value, depth + 1, budget) : value);
  }
  return out;
}

/**
 * The user's values laid over the chart's defaults: a user value wins, maps
 * merge, and a user `null` removes the default (Helm: "delete the key").
 * Keys the user set to null that the chart never had are dropped too.
 */
export function coalesce(defaults: Values, user: Values, depth = 0, budget = freshBudget()): Values {
  const out: Values = {};
  for (const [key, value] of Object.entries(defaults)) if (!own(user, key)) put(out, key, value);
  for (const [key, value] of Object.entries(user)) {
    if (value === null) continue;
    const had = own(defaults, key) ? defaults[key] : undefined;
    const deeper = isMap(had) && isMap(value) && depth < MAX_VALUES_DEPTH && --budget.left > 0;
    put(out, key, deeper ? coalesce(had, value, depth + 1, budget) : value);
  }
  return out;
}

/** The values a subchart renders with: the parent's block for it over its own values.yaml, the parent's globals shared. */
export function subchartValues(parent: Values, scope: string, defaults: Values): Values {
  const block = own(parent, scope) && isMap(parent[scope]) ? parent[scope] : {};
  const values = coalesce(defaults, block);
  const parentGlobals = isMap(parent.global) ? parent.global : {};
  const ownGlobals = isMap(values.global) ? values.global : {};
  return { ...values, global: coalesce(ownGlobals, parentGlobals) };
}

/**
 * The value at a dotted path (`controller.image.tag`), or undefined when a
 * step is missing or not a map. Helm's conditions name values this way.
 */
export function valueAt(values: Values, path: string): unknown {
  let cur: unknown = values;
  for (const key of path.split('.')) {
    if (!isMap(cur) || !own(cur, key)) return undefined;
    cur = cur[key];
  }
  return cur;
}
