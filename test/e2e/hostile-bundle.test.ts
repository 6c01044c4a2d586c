// A bundle crosses into the isolated network on a USB stick, and whoever swaps the stick
// controls every byte of it, sidecar included. Every case of test/helpers/hostile-bundles.ts goes
// through the built CLI (verify, verify --json, inspect, import into ONE real Distribution registry
// behind a request-recording proxy, mirror-config) and each run is held to what the case expects:
// the exact exit code; a last stderr line that names the problem (one line only, where the case
// says so); no stack trace, internal error or raw ESC byte; nothing written (the temp folder
// unchanged, no hostile name created anywhere); for imports, exactly which requests reached the
// registry; and time and peak-memory bounds where the case is about them. All failures of a case
// are collected, so a failing case says everything that is wrong with it at once.
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onExit } from '../../scripts/lib/process.js';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { peakRssKib, startCli, tempDir } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import {
  CASE_CLASSES,
  hostileCases,
  makeSample,
  type BuiltCase,
  type Command,
  type Expectation,
  type HostileCase,
} from '../helpers/hostile-bundles.js';
import { ACCEPT } from '../helpers/registry-state.js';

/** Two children at a time: the machine has two cores, and the registry needs some too. */
const LANES = 2;
const DEFAULT_KILL_MS = 30_000;
const MAX_LAST_LINE = 2000;
const WRITES = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);

// The cases are listed before the tests are defined, so the sample they derive from is made now.
const work = await tempDir('airgap-hostile-bundle-');
// Removed in afterAll; this covers a run that ends before it (collection only, a crash).
const unhookWork = onExit(() => rmSync(work.path, { recursive: true, force: true }));
const marker = `hostile-escape-${randomBytes(4).toString('hex')}`;
const sample = await makeSample(join(work.path, 'sample'));
const CASES = hostileCases(sample, marker);

const built = new Map<string, BuiltCase>();
const caseDir = (c: HostileCase) => join(work.path, 'cases', c.id);
let registry: RunningRegistry;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  rssMiB: number;
  killed: boolean;
}

let active = 0;
const waiting: Array<() => void> = [];
async function lane<T>(fn: () => Promise<T>): Promise<T> {
  while (active >= LANES) await new Promise<void>((r) => waiting.push(r));
  active++;
  try {
    return await fn();
  } finally {
    active--;
    waiting.shift()?.();
  }
}

/** Runs the built CLI in `cwd` with HOME, TMPDIR and caches inside the temp folder; SIGKILL after `killMs`. */
function runTool(args: string[], cwd: string, killMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: join(work.path, 'home'),
      XDG_CACHE_HOME: join(work.path, 'home', '.cache'),
      TMPDIR: join(work.path, 'tmp'),
      DOCKER_CONFIG: join(work.path, 'home', '.docker'),
    };
    delete env.AIRGAP_BUNDLE_DEBUG;
    delete env.AIRGAP_BUNDLE_CACHE;
    const started = performance.now();
    const child = startCli(args, {
      peakRss: true,
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, killMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const raw = Buffer.concat(err).toString('utf8');
      const m = /\n@@maxrss=(\d+)\n$/.exec(raw);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: m ? raw.slice(0, m.index) : raw,
        ms: performance.now() - started,
        rssMiB: peakRssKib(child, raw) / 1024,
        killed,
      });
    });
  });
}

/** Every path under the temp folder with type and size, except what mirror-config is allowed to write. */
function snapshot(): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, f.name);
      if (f.isDirectory()) {
        if (f.name !== 'mirror-out') walk(p);
        out.push(`${p}/`);
      } else out.push(`${p} ${lstatSync(p).size}`);
    }
  };
  walk(work.path);
  return out.sort().join('\n');
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function argsFor(cmd: Command, proxyHost: string | undefined, prefix: string): string[] {
  switch (cmd) {
    case 'verify':
      return ['verify', 'b.tar'];
    case 'verify-json':
      return ['verify', 'b.tar', '--json'];
    case 'inspect':
      return ['inspect', 'b.tar'];
    case 'import':
      return ['import', 'b.tar', '--registry', proxyHost!, '--plain-http', '--repo-prefix', prefix];
    case 'mirror-config':
      return [
        'mirror-config',
        '--endpoint',
        'http://registry.lan:5000',
        '--bundle',
        'b.tar',
        '-o',
        join('mirror-out', 'mirror.yaml'),
      ];
  }
}

async function served(repository: string, tag: string): Promise<number> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: ACCEPT },
  });
  return res.status;
}

async function catalog(): Promise<string[]> {
  const res = await fetch(`${registry.url}/v2/_catalog?n=100000`);
  return ((await res.json()) as { repositories?: string[] }).repositories ?? [];
}

const lastLine = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .pop() ?? '';
const short = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
const INTERNAL =
  /\b(TypeError|RangeError|SyntaxError|ReferenceError)\b|Maximum call stack|Cannot read propert|is not a function|is not iterable|Invalid string length|heap out of memory|ERR_STRING_TOO_LONG/;

/** Runs one command of one case and returns what is wrong with the result. */
async function runCommand(c: HostileCase, index: number, cmd: Command, exp: Expectation): Promise<string[]> {
  const dir = caseDir(c);
  const prefix = `hb-${index}`;
  const problems: string[] = [];
  const fail = (what: string) => problems.push(`${cmd}: ${what}`);
  let proxy: FaultProxy | undefined;
  const { run, before, after } = await lane(async () => {
    if (cmd === 'import') proxy = await startFaultProxy(registry.url);
    try {
      const snapBefore = snapshot();
      const r = await runTool(
        argsFor(cmd, proxy?.host, prefix),
        dir,
        exp.maxMs !== undefined ? exp.maxMs + 5_000 : DEFAULT_KILL_MS,
      );
      return { run: r, before: snapBefore, after: snapshot() };
    } finally {
      await proxy?.stop();
    }
  });
  const last = lastLine(run.stderr);
  const outputs = `${run.stdout}\n${run.stderr}`;

  if (run.killed) fail(`did not finish: killed after ${Math.round(run.ms)} ms`);
  else if (run.code !== exp.exit) fail(`exit ${run.code}, expected ${exp.exit}: ${short(last)}`);
  if (/^\s+at \S/m.test(run.stderr) || INTERNAL.test(run.stderr))
    fail(`internal error or stack trace on stderr: ${short(run.stderr.match(INTERNAL)?.[0] ?? last)}`);
  if (outputs.includes('\u001b')) fail(`raw ESC byte in ${run.stdout.includes('\u001b') ? 'stdout' : 'stderr'}`);
  if (exp.exit !== 0 && !run.killed) {
    if (last === '') fail('stderr is empty: nothing names the problem');
    else if (exp.names && !exp.names.test(last))
      fail(`last stderr line does not name the problem (${exp.names}): ${short(last)}`);
    if (last.length > MAX_LAST_LINE) fail(`last stderr line is ${last.length} characters long`);
  }
  if (exp.oneLine) {
    const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
    if (lines.length !== 1)
      fail(`stderr holds ${lines.length} lines, expected exactly one: ${short(lines.slice(0, 3).join(' | '))}`);
  }
  for (const m of exp.mentions ?? []) if (!outputs.includes(m)) fail(`output does not mention ${m}`);
  for (const f of exp.forbidden ?? []) if (outputs.includes(f)) fail(`output holds ${short(f, 20)}`);
  if (exp.maxMs !== undefined && run.ms > exp.maxMs) fail(`took ${Math.round(run.ms)} ms, bound ${exp.maxMs} ms`);
  if (exp.maxRssMiB !== undefined && !run.killed && run.rssMiB > exp.maxRssMiB)
    fail(`peak RSS ${Math.round(run.rssMiB)} MiB, bound ${exp.maxRssMiB} MiB`);
  const outBytes = Buffer.byteLength(run.stdout) + Buffer.byteLength(run.stderr);
  if (exp.maxOutputBytes !== undefined && outBytes > exp.maxOutputBytes)
    fail(`printed ${outBytes} bytes, bound ${exp.maxOutputBytes}`);

  if (cmd === 'verify-json' && !run.killed) {
    let report: Record<string, any> | undefined;
    try {
      const parsed: unknown = JSON.parse(run.stdout);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        fail('stdout is JSON but not an object');
      else report = parsed as Record<string, any>;
    } catch {
      fail(
        `stdout is not complete valid JSON (${run.stdout.length} chars: ${short(JSON.stringify(run.stdout.slice(0, 80)), 100)})`,
      );
    }
    if (report) {
      if (report.ok !== (exp.exit === 0)) fail(`report.ok is ${String(report.ok)}, expected ${exp.exit === 0}`);
      const why = exp.report?.(report);
      if (why) fail(why);
    }
  }

  if (before !== after) {
    const a = new Set(before.split('\n'));
    const b = new Set(after.split('\n'));
    const changed = [
      ...[...b].filter((x) => !a.has(x)).map((x) => `+${x}`),
      ...[...a].filter((x) => !b.has(x)).map((x) => `-${x}`),
    ];
    fail(`files changed in the temp folder during the run: ${short(changed.join(', '))}`);
  }
  if (cmd === 'mirror-config') {
    const written = readdirSync(join(dir, 'mirror-out'));
    if (exp.exit !== 0 && written.length > 0) fail(`wrote ${written.join(', ')}`);
    if (exp.exit === 0 && !written.includes('mirror.yaml')) fail('wrote no mirror.yaml');
  }

  if (cmd === 'import' && proxy && exp.registry) {
    const reg = exp.registry;
    const requests = proxy.requests;
    const writes = requests.filter((r) => WRITES.has(r.method));
    const list = (rs: typeof requests) => short(rs.map((r) => `${r.method} ${r.path}`).join(', '), 400);
    if (reg.access === 'untouched' && requests.length > 0)
      fail(`${requests.length} requests reached the registry, expected none: ${list(requests)}`);
    if (reg.access === 'no-writes' && writes.length > 0)
      fail(`${writes.length} write requests reached the registry, expected none: ${list(writes)}`);
    if (reg.access === 'writes' && writes.length === 0)
      fail('no write request reached the registry, expected the import to push');
    for (const t of reg.tagged ?? []) {
      const [repo, tag] = t.split(':') as [string, string];
      const status = await served(`${prefix}/${repo}`, tag);
      if (status !== 200) fail(`${prefix}/${t} is not served after the import (HEAD ${status})`);
    }
    for (const t of reg.notTagged ?? []) {
      const [repo, tag] = t.split(':') as [string, string];
      const status = await served(`${prefix}/${repo}`, tag);
      if (status !== 404) fail(`${prefix}/${t} is served after the import (HEAD ${status}), expected no tag`);
    }
    if (reg.noRepository) {
      const bad = (await catalog()).filter((r) => reg.noRepository!.test(r));
      if (bad.length > 0) fail(`the registry now holds repositories ${bad.join(', ')}`);
    }
  }
  return problems;
}

/** Where the hostile names of a case could have landed: none of them may exist. */
function escaped(c: HostileCase, b: BuiltCase): string[] {
  const places = new Set([
    tmpdir(),
    homedir(),
    process.cwd(),
    work.path,
    join(work.path, 'home'),
    join(work.path, 'tmp'),
    '/',
  ]);
  for (let d = caseDir(c); d !== dirname(d); d = dirname(d)) places.add(d);
  const found: string[] = [];
  for (const name of b.escapes) {
    const candidates = name.startsWith('/') ? [name] : [...places].map((p) => join(p, name));
    for (const p of candidates) if (exists(p)) found.push(p);
  }
  return found;
}

beforeAll(async () => {
  mkdirSync(join(work.path, 'home'), { recursive: true });
  mkdirSync(join(work.path, 'tmp'), { recursive: true });
  const starting = startRegistry();
  try {
    for (const c of CASES) {
      const dir = caseDir(c);
      mkdirSync(join(dir, 'mirror-out'), { recursive: true });
      built.set(c.id, c.build(dir));
    }
  } finally {
    registry = await starting;
  }
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  await work.remove();
  unhookWork();
});

describe('the crafted cases', () => {
  it('cover every class of attack, with unique ids', () => {
    const ids = CASES.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const cls of CASE_CLASSES)
      expect(CASES.filter((c) => c.cls === cls).length, `class ${cls}`).toBeGreaterThan(0);
  });
});

describe.concurrent('hostile bundles through the CLI', () => {
  CASES.forEach((c, index) => {
    it(`[${c.cls}] ${c.id}: ${c.description}`, async ({ expect }) => {
      const b = built.get(c.id)!;
      const results = await Promise.all(
        (Object.entries(c.expected) as Array<[Command, Expectation]>).map(([cmd, exp]) =>
          runCommand(c, index, cmd, exp),
        ),
      );
      const problems = results.flat();
      for (const p of escaped(c, b)) problems.push(`a hostile name was created: ${p}`);
      expect(problems, `${c.id}:\n  ${problems.join('\n  ')}`).toEqual([]);
    }, 110_000);
  });
});
