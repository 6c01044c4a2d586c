import { printable } from '../util/text.js';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(s % 60).padStart(2, '0')}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/**
 * A fixed-width table for terminals: columns padded to their widest cell. Cells
 * often hold bundle or registry strings, so each is escaped and cut by
 * `printable` first: no control character reaches the terminal, and one absurd
 * cell cannot widen every row (the table stays linear in its rows).
 */
export function table(rows: string[][]): string {
  const cells = rows.map((r) => r.map((c) => printable(c)));
  const widths: number[] = [];
  for (const r of cells) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** Bundle or registry strings joined by ", ", each escaped and bounded, the list bounded too. */
export function printableList(items: readonly string[], max = 20): string {
  const shown = items.slice(0, max).map((i) => printable(i));
  return items.length > shown.length
    ? `${shown.join(', ')}, … (${items.length - shown.length} more)`
    : shown.join(', ');
}
