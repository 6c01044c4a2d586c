// Small process helpers shared by the test-environment scripts (registry, TLS, samples).
import { execFile, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; the error carries stderr because that is where the tools explain themselves. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, env: opts.env }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? 'not found' : stderr.trim() || err.message;
        reject(new Error(`${cmd} ${args.join(' ')} failed: ${why}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Returns a port that was free a moment ago. Callers must retry if someone else takes it first. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

// Synchronous clean-ups run on process exit, so a test that crashes or forgets stop()
// does not leave registries running or temp folders behind.
const exitHooks = new Set<() => void>();
process.once('exit', () => {
  for (const hook of exitHooks) {
    try {
      hook();
    } catch {
      // Best effort: the process is going away anyway.
    }
  }
});

/** Registers a synchronous exit clean-up; the returned function unregisters it. */
export function onExit(hook: () => void): () => void {
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

/** Sends SIGTERM to the child's PID, escalates to SIGKILL after `graceMs`, and resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // An unreferenced child would let Node exit before the 'exit' event arrives.
  child.ref();
  process.kill(pid, 'SIGTERM');
  const timer = setTimeout(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone between the timer firing and the signal.
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
}
