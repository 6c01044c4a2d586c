import { describe, expect, it } from 'vitest';
import { formatTarget, judge, median, pairedShare, type Target } from '../../scripts/bench/targets.js';

const share = (measured: number): Target => ({
  name: 'export >= 95 % of the registry ceiling to disk',
  measured,
  limit: 0.95,
  kind: 'at-least',
  unit: '%',
});
const rss = (measured: number): Target => ({
  name: 'peak RSS under 150 MiB',
  measured,
  limit: 150,
  kind: 'under',
  unit: 'MiB',
});

describe('bench targets', () => {
  it('an at-least target is met at its limit and above, missed below', () => {
    expect(judge(share(0.95)).met).toBe(true);
    expect(judge(share(1.2)).met).toBe(true);
    expect(judge(share(0.949)).met).toBe(false);
  });

  it('an under target is met below its limit only', () => {
    expect(judge(rss(149.9)).met).toBe(true);
    expect(judge(rss(150)).met).toBe(false);
    expect(judge(rss(400)).met).toBe(false);
  });

  it('a figure that was not measured misses, whatever the kind', () => {
    expect(judge(share(NaN)).met).toBe(false);
    expect(judge(rss(NaN)).met).toBe(false);
    expect(judge(share(Infinity)).met).toBe(false);
  });

  it('prints met or missed with the figure and the limit in their unit', () => {
    expect(formatTarget(judge(share(0.86)))).toBe(
      'MISSED  export >= 95 % of the registry ceiling to disk: 86 % (target >= 95 %)',
    );
    expect(formatTarget(judge(rss(128.4)))).toBe('MET     peak RSS under 150 MiB: 128 MiB (target < 150 MiB)');
    const serve = judge({ name: 'serve >= 1.0x Distribution', measured: 0.98, limit: 1, kind: 'at-least', unit: 'x' });
    expect(formatTarget(serve)).toBe('MISSED  serve >= 1.0x Distribution: 0.98x (target >= 1.00x)');
    expect(formatTarget(judge(share(NaN)))).toContain(': not measured (target >= 95 %)');
  });

  it('takes the median of an odd and an even count, and NaN of none', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("pairs each run's step with that run's ceiling", () => {
    // Run 2 is twice as slow on both sides (a busy minute): its share is the same as run 1's.
    const s = pairedShare({ bytes: 1000, seconds: [2, 4, 3] }, { bytes: 1000, seconds: [1, 2, 2.7] });
    expect(s.each).toEqual([0.5, 0.5, 0.9]);
    expect(s.median).toBe(0.5);
    expect([s.min, s.max]).toEqual([0.5, 0.9]);
  });

  it('weighs the bytes each side moved, and leaves out runs one side lacks', () => {
    // The ceiling moved 900 bytes of blobs, the step 1000 (manifests too), in the same time.
    const s = pairedShare({ bytes: 1000, seconds: [1, 1] }, { bytes: 900, seconds: [1] });
    expect(s.each).toHaveLength(1);
    expect(s.each[0]).toBeCloseTo(1000 / 900, 10);
    expect(pairedShare({ bytes: 1, seconds: [] }, { bytes: 1, seconds: [1] }).median).toBeNaN();
  });
});
