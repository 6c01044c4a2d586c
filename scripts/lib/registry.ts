// Starts a real CNCF Distribution registry (Debian's docker-registry 2.8) on loopback, so tests
// and demos talk to the same server software that air-gapped sites run, not to a mock.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import type { Socket } from 'node:net';
import path from 'node:path';
import yaml from 'js-yaml';
import { freePort, onExit, run, stopChild } from './process.js';
import { makeServerCertificate } from './tls.js';
import { startTokenServer, type TokenServer } from './token-server.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface RegistryOptions {
  auth?: RegistryAuth; // default 'none'
  tls?: boolean; // default false: plain HTTP
  username?: string; // default 'tester' (htpasswd and token modes)
  password?: string; // default: random
  tokenLifetimeSeconds?: number; // token mode: lifetime of issued tokens (default 300)
  allowAnonymousPull?: boolean; // token mode: anonymous token requests get pull (default false)
}

export interface RunningRegistry {
  host: string; // "127.0.0.1:PORT"
  url: string; // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT"
  storageDir: string;
  caFile?: string; // tls: PEM of the CA that signed the server certificate
  certDir?: string; // tls: folder holding only ca.crt (for skopeo --src-cert-dir/--dest-cert-dir)
  username?: string;
  password?: string;
  tokenServer?: { url: string; readonly issued: number }; // url is the realm; issued is live
  /**
   * skopeo flags to reach this registry: with 'src'/'dest' for `skopeo copy`
   * (e.g. --dest-tls-verify=false), without a side for inspect/list-tags/delete (--tls-verify=false).
   */
  skopeoArgs(side?: 'src' | 'dest'): string[];
  /**
   * Kills the registry, stops the token server, removes the temp folders; idempotent. Neither
   * process keeps Node alive, and an exit hook cleans up after a script that never calls stop().
   */
  stop(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 15_000;
const PORT_ATTEMPTS = 5;
// Every response carries this header (http.headers), so a probe that reaches some other server
// which grabbed the port first is not mistaken for our registry being ready.
const INSTANCE_HEADER = 'x-airgap-test-registry';

/** htpasswd line with bcrypt cost 5: the registry checks bcrypt on every request, so cost 10 costs ~70 ms each. */
async function htpasswdLine(user: string, password: string): Promise<string> {
  // No apache2-utils needed: Debian's libcrypt does bcrypt, and Perl (always installed, being
  // Essential) exposes it as crypt(). Python's crypt module would do too, but left Python in 3.13.
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const pick = (chars: string) => chars[crypto.randomInt(chars.length)]!;
  // 22 characters carry the 128-bit salt; the last one holds only 4 bits, so its 2 low bits must be 0.
  const salt = `$2y$05$${Array.from({ length: 21 }, () => pick(alphabet)).join('')}${pick('.Oeu')}`;
  const { stdout } = await run('perl', ['-e', 'local $/; print crypt(<STDIN>, $ARGV[0])', salt], { input: password });
  if (!stdout.startsWith(salt) || stdout.length !== 60)
    throw new Error(`perl crypt() produced no bcrypt hash: ${stdout}`);
  return `${user}:${stdout}\n`;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** GETs /v2/ and returns the status, or undefined while our registry is not the one answering yet. */
function probe(url: string, instanceId: string, ca?: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(`${url}/v2/`, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.headers[INSTANCE_HEADER] === instanceId ? res.statusCode : undefined);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** Spawns the registry and waits until /v2/ answers 200 or 401; rejects with its stderr if it dies. */
async function launch(configFile: string, url: string, instanceId: string, caFile?: string): Promise<ChildProcess> {
  const ca = caFile ? await readFile(caFile, 'utf8') : undefined;
  const child = spawn(REGISTRY_BIN, ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    // Keep only the tail: enough to explain a failure without growing forever.
    stderr = (stderr + chunk).slice(-4096);
  });
  const unhook = onExit(() => child.kill('SIGKILL'));
  child.once('exit', unhook);
  // Unreferenced, a forgotten stop() does not keep a script alive forever: the exit hook still kills it.
  child.unref();
  (child.stderr as Socket).unref();

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited during startup (${child.exitCode ?? child.signalCode}):\n${stderr}`);
    }
    const status = await probe(url, instanceId, ca);
    if (status === 200 || status === 401) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopChild(child);
  throw new Error(`docker-registry did not answer ${url}/v2/ within ${STARTUP_TIMEOUT_MS} ms:\n${stderr}`);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  if (!isExecutable(REGISTRY_BIN)) {
    throw new Error(`${REGISTRY_BIN} not found; install it: apt-get install -y docker-registry`);
  }
  const auth = opts.auth ?? 'none';
  const username = auth === 'none' ? undefined : (opts.username ?? 'tester');
  // base64url has no ':', so "user:password" credentials stay unambiguous.
  const password = auth === 'none' ? undefined : (opts.password ?? crypto.randomBytes(12).toString('base64url'));

  const dir = await mkdtemp(path.join(os.tmpdir(), 'airgap-registry-'));
  const unhookDir = onExit(() => rmSync(dir, { recursive: true, force: true }));
  const storageDir = path.join(dir, 'storage');
  let tokenServer: TokenServer | undefined;
  let child: ChildProcess | undefined;

  try {
    const instanceId = crypto.randomUUID();
    const config: Record<string, any> = {
      version: '0.1',
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        delete: { enabled: true },
        // Upload purging is a background sweep that only adds noise to short-lived test registries.
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: '', secret: crypto.randomBytes(16).toString('hex'), headers: { [INSTANCE_HEADER]: [instanceId] } },
    };

    const tlsFiles = opts.tls ? await makeServerCertificate(path.join(dir, 'tls')) : undefined;
    if (tlsFiles) config.http.tls = { certificate: tlsFiles.certFile, key: tlsFiles.keyFile };

    if (auth === 'htpasswd') {
      const file = path.join(dir, 'htpasswd');
      await writeFile(file, await htpasswdLine(username!, password!));
      config.auth = { htpasswd: { realm: 'test-registry', path: file } };
    } else if (auth === 'token') {
      tokenServer = await startTokenServer({
        service: 'test-registry',
        issuer: 'test-issuer',
        username: username!,
        password: password!,
        lifetimeSeconds: opts.tokenLifetimeSeconds,
        allowAnonymousPull: opts.allowAnonymousPull,
      });
      config.auth = {
        token: {
          realm: tokenServer.url,
          service: 'test-registry',
          issuer: 'test-issuer',
          rootcertbundle: tokenServer.certFile,
        },
      };
    }

    const scheme = opts.tls ? 'https' : 'http';
    const configFile = path.join(dir, 'config.yml');
    let host = '';
    // The free port can be taken between probing and the registry binding it: try again then.
    for (let attempt = 1; !child; attempt++) {
      host = `127.0.0.1:${await freePort()}`;
      config.http.addr = host;
      await writeFile(configFile, yaml.dump(config));
      try {
        child = await launch(configFile, `${scheme}://${host}`, instanceId, tlsFiles?.caFile);
      } catch (err) {
        if (attempt >= PORT_ATTEMPTS || !/address already in use/.test(String(err))) throw err;
      }
    }

    const running = child;
    const token = tokenServer;
    let stopping: Promise<void> | undefined;
    return {
      host,
      url: `${scheme}://${host}`,
      storageDir,
      caFile: tlsFiles?.caFile,
      certDir: tlsFiles?.certDir,
      username,
      password,
      tokenServer: token && {
        url: token.url,
        get issued() {
          return token.issued;
        },
      },
      skopeoArgs(side) {
        const flag = (name: string) => (side ? `--${side}-${name}` : `--${name}`);
        const args = tlsFiles ? [flag('cert-dir'), tlsFiles.certDir] : [`${flag('tls-verify')}=false`];
        if (username !== undefined) args.push(flag('creds'), `${username}:${password}`);
        return args;
      },
      stop() {
        stopping ??= (async () => {
          await stopChild(running);
          await token?.stop();
          await rm(dir, { recursive: true, force: true });
          unhookDir();
        })();
        return stopping;
      },
    };
  } catch (err) {
    if (child) await stopChild(child);
    await tokenServer?.stop();
    await rm(dir, { recursive: true, force: true });
    unhookDir();
    throw err;
  }
}
