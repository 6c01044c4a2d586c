// `airgap-bundle serve … --json` as a child process, the way an operator runs it: the port is read
// from its first stdout line ({"event":"listening",…}), every later line is one access-log record,
// and it is stopped by its own pid with a signal.
import { onExit } from '../../scripts/lib/process.js';
import { startCli } from './cli.js';

export interface ServeProcess {
  /** `http://127.0.0.1:PORT` (`https://…` when the server announced TLS). */
  url: string;
  port: number;
  pid: number;
  /** The listening line as printed. */
  listening: Record<string, unknown>;
  /** Access-log records so far (lines that are not JSON come back as `{ raw: line }`). */
  logs(): Record<string, unknown>[];
  /** Waits until a record matches, or fails after `timeoutMs`: a record is written once its response closes. */
  waitForLog(match: (r: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stderr(): string;
  /** False once the process has exited. */
  running(): boolean;
  /** Sends `signal` (default SIGTERM), SIGKILL after `killAfterMs`; resolves with the exit code (null if killed). */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | null>;
}

export interface ServeOptions {
  /** Text for stdin (--password-stdin). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** How long the listening line may take (default 30 s: the machine may be busy). */
  startTimeoutMs?: number;
}

/**
 * Starts `serve ARGS --json` (added unless there), with `--listen 127.0.0.1:0` unless ARGS has a `--listen`.
 * Rejects with the exit code and stderr if it exits or stays silent before listening.
 */
export function startServe(args: string[], opts: ServeOptions = {}): Promise<ServeProcess> {
  const has = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  const extra = [...(has('--listen') ? [] : ['--listen', '127.0.0.1:0']), ...(has('--json') ? [] : ['--json'])];
  const child = startCli(['serve', ...args, ...extra], {
    env: { ...process.env, DOCKER_CONFIG: '/nonexistent-docker-config', ...opts.env },
  });
  const unhook = onExit(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      unhook();
      resolve(code);
    }),
  );
  let stderr = '';
  let pending = '';
  const lines: Record<string, unknown>[] = [];
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    pending += c;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      lines.push(parseLine(pending.slice(0, nl)));
      pending = pending.slice(nl + 1);
    }
  });
  child.stdin.end(opts.input ?? '');

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 15_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    process.kill(child.pid!, signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const logs = () => lines.slice(1);
  const waitForLog = async (match: (r: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    for (const deadline = Date.now() + timeoutMs; ; await sleep(25)) {
      const found = logs().find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no access-log record matched within ${timeoutMs} ms`);
    }
  };

  return (async () => {
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
    while (lines.length === 0) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        const code = await stop('SIGKILL');
        throw new Error(`serve ${args.join(' ')} did not start (exit ${code}):\n${stderr}`);
      }
      await sleep(20);
    }
    const listening = lines[0]!;
    const address = listening.address as { port?: unknown } | undefined;
    if (listening.event !== 'listening' || typeof address?.port !== 'number') {
      await stop('SIGKILL');
      throw new Error(`serve printed ${JSON.stringify(listening)} before anything else, not the listening line`);
    }
    const scheme = String(listening.endpoint).startsWith('https:') ? 'https' : 'http';
    return {
      url: `${scheme}://127.0.0.1:${address.port}`,
      port: address.port,
      pid: child.pid!,
      listening,
      logs,
      waitForLog,
      stderr: () => stderr,
      running: () => child.exitCode === null && child.signalCode === null,
      stop,
    };
  })();
}

function parseLine(line: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(line);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Kept as raw text below: a test can then show what was printed instead.
  }
  return { raw: line };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
