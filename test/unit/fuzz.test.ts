// Bounded, seeded fuzzing of the two parsers that take untrusted input. The bundle reader (verify,
// inspect) meets damaged and hostile tars, in process: the hostile corpus's tar-level, structural,
// repository and metadata cases (test/helpers/hostile-bundles.ts, each attack defined there once)
// and seeded random damage of one valid bundle. It must never crash (only a report, or a
// BundleFormatError that the CLI turns into exit 3), never accept a changed bundle as intact, and
// stay in bounded memory. The reference parser meets random strings: it throws only ReferenceError,
// and what it accepts round-trips. A failing case prints its seed and id. The same cases through
// the built CLI are test/e2e/fuzz-cli.test.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetadata, BundleFormatError } from '../../src/bundle/reader.js';
import { verifyBundle } from '../../src/verify/verify.js';
import { summarize } from '../../src/commands/inspect.js';
import { formatReference, parseReference, ReferenceError } from '../../src/reference/reference.js';
import { tempDir } from '../helpers/cli.js';
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
const RANDOM_CASES = 50; // plus ~45 from the corpus and ~15 crafted: ~110 cases in all
const TIME_BOX_MS = 15_000; // fuse: random cases left when it blows are skipped (at least MIN_RANDOM must run)
const MIN_RANDOM = 20;
const CASE_TIMEOUT_MS = 10_000;
const MAX_RETAINED = 128 * 1024 * 1024; // live heap and buffers after all cases and a collection

let work: { path: string; remove: () => Promise<void> };
let base: FuzzBase;

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS)),
    ),
  ]).finally(() => clearTimeout(timer));
}

/** The in-process oracle; returns what went wrong, or undefined. */
async function judge(c: FuzzCase, file: string): Promise<string | undefined> {
  try {
    const report = await withTimeout(verifyBundle(file), 'verifyBundle');
    if (report.ok && c.changed) return 'verify accepted a changed bundle as intact';
    // The CLI prints the report; what it names is somewhere in it.
    const text = JSON.stringify(report);
    if (c.names && !report.ok && !c.names.test(text))
      return `verify's report does not name ${c.names}: ${text.slice(0, 300)}`;
  } catch (err) {
    if (!(err instanceof BundleFormatError))
      return `verifyBundle threw ${(err as Error).name}: ${(err as Error).message}`;
    if (c.names && !c.names.test(err.message))
      return `verify's refusal does not name ${c.names}: ${err.message.slice(0, 300)}`;
  }
  try {
    const meta = await withTimeout(readMetadata(file), 'readMetadata');
    JSON.stringify(summarize(meta));
  } catch (err) {
    if (!(err instanceof BundleFormatError))
      return `readMetadata/summarize threw ${(err as Error).name}: ${(err as Error).message}`;
  }
  return undefined;
}

beforeAll(async () => {
  work = await tempDir('airgap-fuzz-');
  base = await fuzzBase(join(work.path, 'base'), SEED);
});

afterAll(async () => {
  await work?.remove();
});

describe('bundle reader fuzzing', () => {
  it('the unmutated base bundle verifies, so every rejection below is caused by the mutation', async () => {
    const report = await verifyBundle(base.file);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(base.headers.length).toBeGreaterThan(10);
  });

  it(`~110 damaged and hostile bundles (seed ${SEED}): no crash, no damaged bundle accepted, bounded time and memory`, async () => {
    const rnd = prng(SEED);
    const corpus = corpusCases(base, join(work.path, 'corpus'), `airgap-fuzz-escape-${SEED.toString(16)}`);
    expect(corpus.length).toBeGreaterThan(40);
    const cases = [
      ...corpus,
      ...craftedCases(base),
      ...Array.from({ length: RANDOM_CASES }, (_, n) => randomCase(base, rnd, n)),
    ];
    const dir = join(work.path, 'cases');
    mkdirSync(dir);
    const started = Date.now();
    // What stays alive after a garbage collection (heap, buffers, the readers' 16 MiB rings): a
    // reader that kept anything per bundle would grow it with every case. The rings are freed
    // lazily (and only once their hashing thread has exited), so settle and collect first.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // Shared rings are released only once their hashing thread's isolate is gone, which lags
    // behind terminate(): collect a few times, so only memory that is really kept remains.
    const retained = async () => {
      let bytes = Infinity;
      for (let round = 0; round < 6 && bytes >= MAX_RETAINED; round++) {
        await new Promise((r) => setTimeout(r, 300));
        gc();
        const m = process.memoryUsage();
        bytes = m.heapUsed + m.arrayBuffers;
      }
      return bytes;
    };
    const failures: string[] = [];
    let ran = 0;
    const queue = [...cases];
    // Two lanes, each with its own file: verify waits on a hashing thread much of the time.
    await Promise.all(
      [0, 1].map(async (lane) => {
        // Named b.tar, as every sidecar names its bundle.
        const file = join(dir, `lane-${lane}`, 'b.tar');
        mkdirSync(join(dir, `lane-${lane}`));
        for (let c = queue.shift(); c && (!c.random || Date.now() - started < TIME_BOX_MS); c = queue.shift()) {
          writeFileSync(file, c.bytes);
          writeFileSync(`${file}.sha256`, c.sidecar ?? base.sidecar);
          const problem = await judge(c, file).catch((err: Error) => `harness: ${err.message}`);
          if (problem) failures.push(`${c.id}: ${problem}`);
          ran++;
        }
      }),
    );
    const after = await retained();
    if (ran < cases.length)
      console.warn(`fuzz: time box of ${TIME_BOX_MS} ms reached after ${ran} of ${cases.length} cases`);
    // The corpus and the crafted cases run whatever the time box says: only random ones are skipped.
    expect(ran).toBeGreaterThanOrEqual(cases.length - RANDOM_CASES + MIN_RANDOM);
    expect(after).toBeLessThan(MAX_RETAINED);
    expect(failures).toEqual([]);
  });
});

describe('reference parser fuzzing', () => {
  const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFZ._-/:@_-/:.@ \t\n%[]éß\u0000';
  const PIECES = [
    'docker.io',
    'ghcr.io',
    'localhost',
    'localhost:5000',
    '127.0.0.1:5000',
    '[::1]:5000',
    'registry-1.docker.io',
    'index.docker.io',
    'library',
    'siderolabs',
    'installer',
    'a__b',
    'a--b',
    'a.b',
    'UPPER',
    'v1.8.0',
    'latest',
    `sha256:${'a'.repeat(64)}`,
    `sha512:${'b'.repeat(128)}`,
    `sha256:${'A'.repeat(64)}`,
    'sha256:abc',
    '..',
    '',
    '-x',
    'x-',
    '_',
  ];
  const SEPARATORS = ['/', ':', '@', '/', '/', ''];

  function candidate(rnd: ReturnType<typeof prng>): string {
    if (rnd.next() < 0.4)
      return Array.from({ length: rnd.int(0, 40) }, () => ALPHABET[rnd.int(0, ALPHABET.length - 1)]).join('');
    let s = '';
    for (let i = rnd.int(1, 6); i > 0; i--) s += rnd.pick(PIECES) + (i > 1 ? rnd.pick(SEPARATORS) : '');
    return s;
  }

  it(`3000 random strings (seed ${SEED}): only ReferenceError is thrown, and accepted references round-trip`, () => {
    const rnd = prng(SEED);
    const failures: string[] = [];
    let accepted = 0;
    for (let n = 0; n < 3000; n++) {
      const input = candidate(rnd);
      let ref;
      try {
        ref = parseReference(input);
      } catch (err) {
        if (!(err instanceof ReferenceError))
          failures.push(`${JSON.stringify(input)}: threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
        else if (!err.message.includes('invalid image reference'))
          failures.push(`${JSON.stringify(input)}: unhelpful message ${err.message}`);
        continue;
      }
      accepted++;
      const text = formatReference(ref);
      let again;
      try {
        again = parseReference(text);
      } catch (err) {
        failures.push(`${JSON.stringify(input)} → ${text}: does not parse again (${(err as Error).message})`);
        continue;
      }
      if (JSON.stringify(again) !== JSON.stringify(ref))
        failures.push(
          `${JSON.stringify(input)} → ${text}: parses to ${JSON.stringify(again)}, not ${JSON.stringify(ref)}`,
        );
      if (formatReference(again) !== text)
        failures.push(`${JSON.stringify(input)} → ${text}: formats differently the second time`);
    }
    expect(failures).toEqual([]);
    expect(accepted).toBeGreaterThan(100);
  });

  it('long adversarial inputs are answered quickly (no catastrophic backtracking)', () => {
    const inputs = [
      'a'.repeat(50_000),
      `${'a-'.repeat(25_000)}!`,
      `${'a.'.repeat(25_000)}:tag`,
      `${'a__'.repeat(16_000)}/x`,
      `host.${'a-'.repeat(20_000)}/x:y`,
      `${'a/'.repeat(25_000)}`,
      `x:${'1'.repeat(50_000)}/y`,
      `x@sha256:${'a'.repeat(50_000)}`,
    ];
    for (const input of inputs) {
      const t0 = performance.now();
      try {
        parseReference(input);
      } catch (err) {
        expect(err).toBeInstanceOf(ReferenceError);
      }
      expect(performance.now() - t0, `${input.slice(0, 20)}… (${input.length} chars)`).toBeLessThan(200);
    }
  });
});
