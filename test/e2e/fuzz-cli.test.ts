// Damaged and hostile bundles through the built CLI (verify, inspect): exit 0 or 3 only, never a
// stack trace or internal error, bounded peak memory, nothing written anywhere. The cases are the
// in-process fuzzing's (test/helpers/fuzz-cases.ts): the hostile corpus's tar-level, structural,
// repository and metadata cases, fuzzing's own crafted documents, and a few seeded random damages.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peakRssKib, startCli, tempDir } from '../helpers/cli.js';
import {
  corpusCases,
  craftedCases,
  fuzzBase,
  randomCase,
  type FuzzBase,
  type FuzzCase,
} from '../helpers/fuzz-cases.js';
import { prng } from '../helpers/prng.js';

const SEED = 0x5eed8;
const MAX_CHILD_RSS_KB = 300 * 1024;

let work: { path: string; remove: () => Promise<void> };
let base: FuzzBase;

interface CliRun {
  code: number | null;
  stderr: string;
  maxRssKb: number;
}
function cli(args: string[], cwd: string): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = startCli(args, {
      peakRss: true,
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stderr: stderr.replace(/\n@@maxrss=\d+\n/, ''), maxRssKb: peakRssKib(child, stderr) });
    });
  });
}

/** Every file under `dir`, with sizes: what a run must leave unchanged. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const rec = (d: string) => {
    for (const f of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, f.name);
      if (f.isDirectory()) rec(p);
      else out.push(`${p} ${statSync(p).size}`);
    }
  };
  rec(dir);
  return out.sort();
}

beforeAll(async () => {
  work = await tempDir('airgap-fuzz-cli-');
  base = await fuzzBase(join(work.path, 'base'), SEED);
});

afterAll(async () => {
  await work?.remove();
});

describe('bundle reader fuzzing through the CLI', () => {
  it('exit 0 or 3 only, no stack trace, bounded memory, nothing written anywhere', async () => {
    const rnd = prng(SEED + 1);
    const marker = `airgap-fuzz-cli-escape-${SEED.toString(16)}`;
    const corpus = corpusCases(base, join(work.path, 'corpus'), marker);
    const chosen: FuzzCase[] = [
      ...corpus,
      ...craftedCases(base).filter((c) => c.cli),
      ...Array.from({ length: 4 }, (_, n) => ({
        ...randomCase(base, rnd, n),
        cli: [n % 2 ? 'inspect' : 'verify'] as Array<'verify' | 'inspect'>,
      })),
    ];
    expect(corpus.length).toBeGreaterThan(40);
    const root = join(work.path, 'cli');
    mkdirSync(root);
    const jobs: Array<() => Promise<string | undefined>> = [];
    for (const [i, c] of chosen.entries()) {
      const dir = join(root, `case-${i}`);
      mkdirSync(dir);
      const file = join(dir, 'b.tar');
      writeFileSync(file, c.bytes);
      writeFileSync(`${file}.sha256`, c.sidecar ?? base.sidecar);
      for (const command of c.cli!) {
        jobs.push(async () => {
          const before = snapshot(work.path);
          const r = await cli([command, 'b.tar'], dir);
          const after = snapshot(work.path);
          const what = `${c.id} (${command}): exit ${r.code}`;
          const last = r.stderr.trim().split('\n').pop();
          if (command === 'verify' && c.changed && r.code !== 3) return `${what}, expected 3: ${last}`;
          if (r.code !== 0 && r.code !== 3) return `${what}, expected 0 or 3: ${last}`;
          if (/^\s+at \S+ \(/m.test(r.stderr) || /\b(TypeError|RangeError|SyntaxError|ReferenceError)\b/.test(r.stderr))
            return `${what}, internal error shown: ${last}`;
          if (r.maxRssKb > MAX_CHILD_RSS_KB) return `${what}, peak RSS ${r.maxRssKb} KiB`;
          if (JSON.stringify(before) !== JSON.stringify(after)) return `${what}, files changed under ${work.path}`;
          return undefined;
        });
      }
    }
    // Two at a time: the machine has two cores.
    const failures: string[] = [];
    const queue = [...jobs];
    await Promise.all(
      [0, 1].map(async () => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          const problem = await job();
          if (problem) failures.push(problem);
        }
      }),
    );
    expect(failures).toEqual([]);
    // Where the hostile names point (relative ones climb at most three levels from a case folder,
    // which stays inside work.path or reaches the temp folder): nothing was created there.
    const escapes = chosen.flatMap((c) => c.escapes ?? []);
    expect(escapes.length).toBeGreaterThan(3);
    for (const e of escapes) {
      const places = e.startsWith('/') ? [e] : [root, work.path, tmpdir()].map((d) => join(d, e));
      for (const p of places) expect(existsSync(p), p).toBe(false);
    }
  });
});
