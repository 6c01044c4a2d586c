// A private containerd for tests: its own root, state and socket under a temporary folder, the CRI
// plugin disabled, started as root in its own process group and stopped by its own pid. It is the
// real consumer of what the tool writes for containerd: hosts.toml mirror folders and OCI tarballs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CONTAINERD_BIN = '/usr/bin/containerd';
export const CTR_BIN = '/usr/bin/ctr';
const STARTUP_TIMEOUT_MS = 15_000;
const CTR_TIMEOUT_MS = 120_000;

export interface CtrResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface PrivateContainerd {
  socket: string;
  /** Runs `ctr -a SOCKET -n NAMESPACE args…`. */
  ctr(args: string[], namespace?: string): CtrResult;
  /** What containerd logged (its stderr), for a failing assertion to show. */
  log(): string;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<PrivateContainerd> {
  const dir = mkdtempSync(join(tmpdir(), 'airgap-containerd-'));
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '',
    ].join('\n'),
  );
  let logged = '';
  const child: ChildProcess = spawn(CONTAINERD_BIN, ['--config', config], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (c: Buffer) => {
    logged += c.toString();
    if (logged.length > 1 << 20) logged = logged.slice(-(1 << 19));
  });
  const ctr = (args: string[], namespace = 'airgap-test'): CtrResult => {
    const r = spawnSync(CTR_BIN, ['-a', socket, '-n', namespace, ...args], {
      encoding: 'utf8',
      timeout: CTR_TIMEOUT_MS,
    });
    return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }
    // The native snapshotter leaves root-owned trees: removed as root, like they were made.
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (ctr(['version']).code !== 0) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`containerd did not start: ${logged.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { socket, ctr, log: () => logged, stop };
}
