// Every runtime dependency runs on both Node.js lines the tool is used on: the npm path's (the lowest
// release of each line `engines` admits) and the one inside the single executable (the pinned
// version). Read from package-lock.json, so a dependency bump that drops a line fails here.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_VERSION } from '../../scripts/lib/package-node.js';

const ROOT = resolve(import.meta.dirname, '../..');
const readJson = (name: string) => JSON.parse(readFileSync(join(ROOT, name), 'utf8'));

/** The lowest release of each line our `engines` admits (`^20.19.0 || >=22.12.0` gives both). */
function lowestAdmitted(range: string): string[] {
  return range.split('||').map((part) => {
    const m = /(\d+\.\d+\.\d+)/.exec(part);
    if (!m) throw new Error(`engines part "${part.trim()}" names no version`);
    return m[1]!;
  });
}

type Version = [number, number, number];

function parse(version: string): Version {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  return [major, minor, patch];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * One comparator of the forms engines fields use: `>=X[.Y[.Z]]`, `^X.Y.Z`, `X`, `X.*`, `X.Y.Z`.
 * Anything else is an error, so a new form is looked at rather than waved through.
 */
function meets(version: Version, comparator: string): boolean {
  const m = /^(>=|\^)?\s*(\d+)(?:\.(\d+|\*))?(?:\.(\d+|\*))?$/.exec(comparator);
  if (!m) throw new Error(`engines comparator "${comparator}" is not a form this check reads`);
  const [, op, major, minor, patch] = m;
  const floor = parse([major, minor, patch].map((n) => (n === undefined || n === '*' ? '0' : n)).join('.'));
  if (op === '>=') return compare(version, floor) >= 0;
  if (op === '^' || minor === undefined || minor === '*')
    return version[0] === floor[0] && compare(version, floor) >= 0;
  return compare(version, floor) === 0;
}

/** npm's range: sets joined by `||`, each set's comparators (separated by spaces) all met. */
function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((set) =>
    set
      .trim()
      .replace(/(>=|\^)\s+/g, '$1')
      .split(/\s+/)
      .every((c) => meets(v, c)),
  );
}

const runtimeEngines = (): [string, string][] => {
  const lock = readJson('package-lock.json') as { packages: Record<string, { dev?: boolean; engines?: unknown }> };
  return Object.entries(lock.packages)
    .filter(([path, entry]) => path !== '' && !entry.dev)
    .map(([path, entry]): [string, unknown] => [path.replace(/^(.*\/)?node_modules\//, ''), entry.engines])
    .map(([name, engines]): [string, string] => [
      name,
      typeof engines === 'object' && engines && 'node' in engines ? String(engines.node) : '*',
    ])
    .filter(([, node]) => node !== '*');
};

describe('runtime dependencies and the Node.js lines', () => {
  const ours = (readJson('package.json') as { engines: { node: string } }).engines.node;
  const lines = [...lowestAdmitted(ours), NODE_VERSION];

  it.each(lines)('every runtime dependency accepts Node.js %s', (version) => {
    const refusing = runtimeEngines().filter(([, range]) => !satisfies(version, range));
    expect(refusing).toEqual([]);
  });

  it('the check reads the ranges dependencies use, and refuses what they refuse', () => {
    expect(runtimeEngines().length).toBeGreaterThan(20);
    expect(satisfies('21.7.0', '^20.17.0 || >=22.9.0')).toBe(false);
    expect(satisfies('22.11.0', '^20.19.0 || ^22.12.0 || >=23')).toBe(false);
    expect(satisfies('20.18.3', '^20.19.0 || ^22.12.0 || >=23')).toBe(false);
    expect(satisfies('19.9.0', '18 || 20 || >=22')).toBe(false);
    expect(satisfies('14.16.0', '>=16 || 14 >=14.17')).toBe(false);
    expect(satisfies('24.22.3', '6.* || 8.* || >= 10.*')).toBe(true);
    expect(satisfies('20.19.0', '^20.19.0 || >=22.12.0')).toBe(true);
  });
});
