/**
 * The bench's targets: each one a limit that a measured figure is held against, judged met or
 * missed and printed with the figure and the limit side by side. Pure, so the judging itself is
 * unit-tested (test/unit/bench-targets.test.ts): a target that cannot be missed is no target.
 */

/** How a figure is shown: a ratio (`1.04x`), a share (`86 %`), or a quantity with its unit. */
export type TargetUnit = 'x' | '%' | 's' | 'ms' | 'MiB' | 'bytes';

export interface Target {
  /** What is aimed at, said as the claim it makes ("export >= 95 % of the ceiling to disk"). */
  name: string;
  /** The figure measured; NaN when it was not measured in this run (a missed target, never a met one). */
  measured: number;
  /** The limit it is held against. */
  limit: number;
  /** `at-least`: met when measured >= limit. `under`: met when measured < limit. */
  kind: 'at-least' | 'under';
  unit: TargetUnit;
}

export interface JudgedTarget extends Target {
  met: boolean;
}

/** Met or missed. A figure that is not a number (not measured, or a division by nothing) is missed. */
export function judge(target: Target): JudgedTarget {
  const { measured, limit } = target;
  const met = Number.isFinite(measured) && (target.kind === 'at-least' ? measured >= limit : measured < limit);
  return { ...target, met };
}

/** A figure in its unit: `1.04x`, `86 %`, `0.54 s`, `447 ms`, `128 MiB`, `0 bytes`. */
export function formatFigure(value: number, unit: TargetUnit): string {
  if (!Number.isFinite(value)) return 'not measured';
  switch (unit) {
    case 'x':
      return `${value.toFixed(2)}x`;
    case '%':
      return `${(value * 100).toFixed(0)} %`;
    case 's':
      return `${value.toFixed(2)} s`;
    case 'ms':
      return `${value.toFixed(0)} ms`;
    case 'MiB':
      return `${value.toFixed(0)} MiB`;
    case 'bytes':
      return `${Math.round(value)} bytes`;
  }
}

/** One line per target: `MET     name: figure (limit: >= limit)`, `MISSED` when it is not. */
export function formatTarget(t: JudgedTarget): string {
  const sign = t.kind === 'at-least' ? '>=' : '<';
  return `${t.met ? 'MET   ' : 'MISSED'}  ${t.name}: ${formatFigure(t.measured, t.unit)} (target ${sign} ${formatFigure(t.limit, t.unit)})`;
}

/** The median of a list (the mean of the middle two for an even count); NaN for an empty one. */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A share of a ceiling over several runs: the median of each run's own share, and the range. */
export interface PairedShare {
  median: number;
  min: number;
  max: number;
  each: number[];
}

/**
 * What share of a ceiling's throughput a step reached, run by run: in run i, the step moved
 * `stepBytes` in `stepSeconds[i]` and the ceiling `ceilingBytes` in `ceilingSeconds[i]`, measured
 * minutes apart on the same machine, so their ratio is free of the drift from one run to the next
 * that a ratio of two medians keeps. Runs where either side is missing are left out.
 */
export function pairedShare(
  step: { bytes: number; seconds: number[] },
  ceiling: { bytes: number; seconds: number[] },
): PairedShare {
  const each: number[] = [];
  for (let i = 0; i < Math.min(step.seconds.length, ceiling.seconds.length); i++) {
    const stepRate = step.bytes / step.seconds[i]!;
    const ceilingRate = ceiling.bytes / ceiling.seconds[i]!;
    const share = stepRate / ceilingRate;
    if (Number.isFinite(share)) each.push(share);
  }
  return {
    median: median(each),
    min: each.length > 0 ? Math.min(...each) : NaN,
    max: each.length > 0 ? Math.max(...each) : NaN,
    each,
  };
}
