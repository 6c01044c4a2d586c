/**
 * `airgap-bundle serve` as the benchmark runs it: on a known free port, so the time from spawning
 * the process to its first answered `GET /v2/` can be measured from outside, with nothing but the
 * request itself in between (no log line to wait for). Stopped by its own pid.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { freePort, onExit, stopChild } from './process.js';

export interface BenchServe {
  host: string;
  pid: number;
  /** Spawn to the first `GET /v2/` answered 200, in milliseconds. */
  firstResponseMs: number;
  /** What serve itself reports: first byte of the bundle read to listening (the rest is Node starting). */
  loadMs: number;
  /** Peak resident set of the process so far (VmHWM), MiB. */
  peakRssMiB(): number;
  /** User + system CPU seconds of the process so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** 200 from `GET /v2/`, or undefined while nothing answers yet. */
function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v2/', timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

const STARTUP_LIMIT_MS = 60_000;

/**
 * Starts `serve BUNDLE --json --quiet`: no access log (the registry it is compared with runs without
 * one), only the listening line, read for serve's own start-up time once GET /v2/ has answered.
 */
export async function startBenchServe(cli: string, bundle: string): Promise<BenchServe> {
  const port = await freePort();
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [cli, 'serve', bundle, '--listen', `127.0.0.1:${port}`, '--json', '--quiet'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const unhook = onExit(() => child.kill('SIGKILL'));
  child.once('exit', unhook);
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout = (stdout + c).slice(0, 64 * 1024)));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`serve ${bundle} exited during start-up (${child.exitCode ?? child.signalCode}):\n${stderr}`);
    if ((await probe(port)) === 200) break;
    if (Number(process.hrtime.bigint() - started) / 1e6 > STARTUP_LIMIT_MS) {
      await stopChild(child);
      throw new Error(`serve ${bundle} did not answer GET /v2/ within ${STARTUP_LIMIT_MS} ms:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const firstResponseMs = Number(process.hrtime.bigint() - started) / 1e6;
  const pid = child.pid!;
  while (!stdout.includes('\n')) await new Promise((r) => setTimeout(r, 5));
  const listening = JSON.parse(stdout.slice(0, stdout.indexOf('\n'))) as { startMs?: unknown };
  return {
    host: `127.0.0.1:${port}`,
    pid,
    firstResponseMs,
    loadMs: Number(listening.startMs),
    peakRssMiB: () => statusKiB(pid, 'VmHWM') / 1024,
    cpuSeconds: () => cpuSecondsOf(pid),
    stop: () => stopChild(child, 15_000),
  };
}

function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** utime + stime from /proc/PID/stat (fields 14 and 15, counted after the command name's closing parenthesis). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
