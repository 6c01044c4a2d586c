import type { PageQuery } from './routes.js';

export interface Page {
  items: string[];
  /** Where the next page starts (the `last` of the next request), when there is one. */
  next: string | undefined;
}

/**
 * One page of a sorted list, as `_catalog` and `tags/list` answer it: the
 * entries after `last`, at most `n` of them.
 */
export function pageOf(sorted: readonly string[], q: PageQuery): Page {
  const start = q.last === undefined ? 0 : firstAfter(sorted, q.last);
  if (q.n === undefined) return { items: sorted.slice(start), next: undefined };
  const items = sorted.slice(start, start + q.n);
  const more = start + q.n < sorted.length && items.length > 0;
  return { items, next: more ? items[items.length - 1] : undefined };
}

/** Index of the first entry greater than `last` (binary search: catalogs run to thousands). */
function firstAfter(sorted: readonly string[], last: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= last) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The `Link` header pointing at the next page; `path` and `next` are grammar-checked strings. */
export function nextLink(path: string, n: number, next: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(next)}>; rel="next"`;
}

/** Byte order, as the registry sorts: the same for every locale. */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
