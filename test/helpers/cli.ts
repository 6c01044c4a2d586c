import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The CLI under test, as one of two things a user runs:
 * - a script run by this Node (default `dist/cli.js`; AIRGAP_BUNDLE_TEST_CLI names another build,
 *   say of an earlier commit);
 * - a single executable (`npm run package`), run directly: AIRGAP_BUNDLE_CLI=PATH. Every e2e test
 *   that starts the CLI goes through `cliCommand`, so this one switch runs the suite against it.
 */
export const CLI_EXECUTABLE = process.env.AIRGAP_BUNDLE_CLI ? resolve(process.env.AIRGAP_BUNDLE_CLI) : undefined;

/** The CLI script this Node runs when no executable is named (also the checkout a test copies). */
export const CLI = process.env.AIRGAP_BUNDLE_TEST_CLI ?? resolve(import.meta.dirname, '../../dist/cli.js');

/** The runtime the CLI under test runs on: what a test may say about a run. */
export const CLI_RUNTIME: 'executable' | 'node' = CLI_EXECUTABLE ? 'executable' : 'node';

// Peak RSS of the child itself, VmHWM of its own address space, written to stderr as it exits.
// (getrusage's maxrss would also count the parent's memory, which the child shares between fork and exec.)
const PEAK_RSS_PROBE = `data:text/javascript,${encodeURIComponent(
  'import { readFileSync } from "node:fs"; process.on("exit", () => { const m = /VmHWM:\\s*(\\d+)/.exec(readFileSync("/proc/self/status", "utf8")); process.stderr.write(`\\n@@maxrss=${m ? m[1] : 0}\\n`); });',
)}`;

/** The file to spawn and its arguments for `airgap-bundle ARGS`. */
export function cliCommand(args: readonly string[], opts: { probePeakRss?: boolean } = {}): [string, string[]] {
  if (CLI_EXECUTABLE) return [CLI_EXECUTABLE, [...args]];
  return [process.execPath, [...(opts.probePeakRss ? ['--import', PEAK_RSS_PROBE] : []), CLI, ...args]];
}

/** Typed as piped, the default; a caller that sets `stdio` knows which streams it has. */
type CliChild = ChildProcessWithoutNullStreams;

const polledPeaks = new WeakMap<CliChild, { kib: number }>();

/**
 * Starts `airgap-bundle ARGS` (stdout and stderr piped unless `stdio` says otherwise).
 * With `peakRss`, the child's peak RSS is kept for `peakRssKib`.
 */
export function startCli(args: readonly string[], options: SpawnOptions & { peakRss?: boolean } = {}): CliChild {
  const { peakRss, ...spawnOptions } = options;
  const [file, argv] = cliCommand(args, { probePeakRss: peakRss });
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions }) as CliChild;
  if (peakRss && CLI_EXECUTABLE) pollPeakRss(child);
  return child;
}

/**
 * An executable runs no `--import` (and reads no NODE_OPTIONS): its VmHWM is read from outside while
 * it runs instead. The mark only grows, so the last reading is the peak but for the final few ms.
 */
function pollPeakRss(child: CliChild): void {
  const peak = { kib: 0 };
  polledPeaks.set(child, peak);
  const read = () => {
    try {
      const m = /VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak.kib = Math.max(peak.kib, Number(m[1]));
    } catch {
      // Gone between two readings: the last one stands.
    }
  };
  // spawn() returns once the child has exec'd (libuv waits for it), so no reading sees the
  // forked copy of this process.
  read();
  const timer = setInterval(read, 5);
  child.once('exit', () => clearInterval(timer));
}

/**
 * The peak RSS (KiB) of a child started with `peakRss`, from its stderr (the probe's last line)
 * or from the readings; Infinity when neither has it, so a bound on it fails rather than passes.
 */
export function peakRssKib(child: CliChild, stderr: string): number {
  const m = /\n@@maxrss=(\d+)\n/.exec(stderr);
  if (m) return Number(m[1]);
  const polled = polledPeaks.get(child)?.kib;
  return polled ? polled : Infinity;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a user would, with its own environment and stdin. */
export function runCli(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = startCli(args, {
      cwd: opts.cwd,
      env: { ...process.env, DOCKER_CONFIG: '/nonexistent-docker-config', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'airgap-test-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Lines of stderr other than the expected advice about Talos lists without an
 * installer (the sample set looks like a Talos cluster): a quiet run that
 * succeeded prints nothing else.
 */
export function unexpectedOutput(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('warning: this looks like a Talos image list'));
}
