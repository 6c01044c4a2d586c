// The single executable `npm run package` builds, run as the isolated side runs it: from a folder
// outside the checkout, with no `node` on PATH and no node_modules above it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, resolve, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EM_AARCH64, EM_X86_64, elfMachine, elfNote } from '../../scripts/lib/package-elf.js';
import { NODE_PIN_FILE, NODE_VERSION } from '../../scripts/lib/package-node.js';
import { run } from '../../scripts/lib/process.js';
import { startRegistry } from '../../scripts/lib/registry.js';
import { CLI, tempDir, unexpectedOutput, type CliResult } from '../helpers/cli.js';
import { exportSampleBundle, type SampleBundle } from '../helpers/sample-bundle.js';
import { editTar } from '../helpers/tar-edit.js';

const ROOT = resolve(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const X64 = 'airgap-bundle-linux-x64';
const ARM64 = 'airgap-bundle-linux-arm64';
/** qemu-user and Debian's arm64 loader and libraries (.ci/run installs them): the arm64 executable can run here. */
const QEMU_AARCH64 = '/usr/bin/qemu-aarch64';
const ARM64_LOADER = '/lib/ld-linux-aarch64.so.1';
const ARM64_LIBSTDCXX = '/usr/lib/aarch64-linux-gnu/libstdc++.so.6'; // Node links the C++ runtime
const canRunArm64 = [QEMU_AARCH64, ARM64_LOADER, ARM64_LIBSTDCXX].every((f) => existsSync(f));

let work: { path: string; remove: () => Promise<void> };
let built: string; // where the build under test wrote its executables
let side: string; // the isolated side's folder: the executable alone, outside the checkout
let exe: string;
let emptyPath: string; // a PATH with nothing in it
let sample: SampleBundle;
const stderrs: string[] = [];

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** `npm run package` into `out` (the checkout's dist/ is left alone). */
async function buildExecutables(out: string): Promise<void> {
  await run(process.execPath, [TSX, join(ROOT, 'scripts', 'package.ts'), '--out', out]);
}

/** Runs the executable from the isolated side's folder, with an environment that has no Node in it. */
function runExe(args: string[], opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return runIn(side, opts.file ?? exe, args, {
    PATH: emptyPath,
    HOME: side,
    DOCKER_CONFIG: join(side, 'no-docker-config'),
    ...opts.env,
  });
}

function runIn(cwd: string, file: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', fail);
    child.on('close', (code, signal) => {
      stderrs.push(stderr);
      done({ code, signal, stdout, stderr });
    });
  });
}

/** No folder from `dir` up to the root holds node_modules. */
function noNodeModulesAbove(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) return false;
    if (dirname(d) === d) return true;
  }
}

beforeAll(async () => {
  work = await tempDir('airgap-exe-');
  built = join(work.path, 'built');
  await buildExecutables(built);
  side = join(work.path, 'isolated');
  emptyPath = join(work.path, 'empty-bin');
  await mkdir(side);
  await mkdir(emptyPath);
  exe = join(side, X64);
  await copyFile(join(built, X64), exe);
  await chmod(exe, 0o755);
  sample = await exportSampleBundle(join(work.path, 'sample'));
}, 600_000);

afterAll(async () => {
  await sample?.upstream.stop();
  await work?.remove();
});

describe('the x64 executable, alone on the isolated side', () => {
  it('runs where there is no node and no node_modules', () => {
    expect(side.startsWith(ROOT + sep)).toBe(false);
    expect(noNodeModulesAbove(side)).toBe(true);
    const onPath = emptyPath.split(delimiter).some((d) => existsSync(join(d, 'node')));
    expect(onPath).toBe(false);
    expect(readdirSync(side)).toEqual([X64]);
  });

  it('--version prints the package version and nothing else', async () => {
    const res = await runExe(['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(VERSION);
    expect(res.stderr).toBe('');
  });

  it('--version --json names the Node.js inside (the pinned one) and the platform', async () => {
    const res = await runExe(['--version', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      version: VERSION,
      node: NODE_VERSION,
      singleExecutable: true,
      platform: 'linux-x64',
    });
  });

  it('reads no NODE_OPTIONS: what the environment holds for other programs changes nothing', async () => {
    // A --require of a missing file would stop any Node that reads NODE_OPTIONS before it starts.
    const res = await runExe(['--version'], { env: { NODE_OPTIONS: `--require ${join(side, 'missing.js')}` } });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(VERSION);
  });

  it('--help is inside: the commands and their options, in English', async () => {
    const res = await runExe(['export', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('Options:');
    expect(res.stdout).toContain('--with-tool');
    expect(res.stdout).toContain('Exit codes:');
  });

  it('verifies a bundle, hashing on its worker thread', async () => {
    const res = await runExe(['verify', sample.bundle]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain('checksum sidecar: matches');
    expect(res.stderr).toContain('bundle intact');
  });

  it('exit 2 for a bad option, exit 3 for a damaged bundle', async () => {
    const bad = await runExe(['verify', sample.bundle, '--no-such-option']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Unknown argument');
    const damaged = join(work.path, 'damaged.tar');
    editTar(sample.bundle, damaged, (entries) => {
      const layer = entries
        .filter((e) => e.path.startsWith('blobs/sha256/'))
        .sort((a, b) => b.data.length - a.data.length)[0]!;
      layer.data = Buffer.from(layer.data);
      layer.data[layer.data.length >> 1]! ^= 0xff;
      return entries;
    });
    const res = await runExe(['verify', damaged]);
    expect(res.code).toBe(3);
  });

  it('imports into a real registry, which then serves every image', async () => {
    const dest = await startRegistry();
    try {
      const res = await runExe(['import', sample.bundle, '--registry', dest.host, '--plain-http', '--json']);
      expect(res.code, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout) as { images: { status: string }[] };
      expect(out.images).toHaveLength(sample.images.length);
      expect(out.images.every((i) => i.status === 'imported')).toBe(true);
      const first = sample.images[0]!;
      const raw = await run('skopeo', [
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${dest.host}/${first.repository}:${first.tag}`,
      ]);
      expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(first.digest);
    } finally {
      await dest.stop();
    }
  });

  it('serves a bundle that skopeo pulls from', async () => {
    const child = spawn(exe, ['serve', sample.bundle, '--listen', '127.0.0.1:0', '--json'], {
      cwd: side,
      env: { PATH: emptyPath, HOME: side },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const port = await listeningPort(child);
      const first = sample.images[0]!;
      const raw = await run('skopeo', [
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://127.0.0.1:${port}/${first.repository}:${first.tag}`,
      ]);
      expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(first.digest);
      const pulled = join(work.path, 'pulled');
      await run('skopeo', [
        'copy',
        '--src-tls-verify=false',
        `docker://127.0.0.1:${port}/${first.repository}:${first.tag}`,
        `oci:${pulled}:x`,
        ...(first.platforms.length > 1 ? ['--multi-arch', 'all'] : []),
      ]);
      expect(existsSync(join(pulled, 'index.json'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r));
    }
  });

  it('prints no warning about experimental features, in any run', async () => {
    // A command that lives past start-up: Node emits its warnings on the next tick, after --version exits.
    const res = await runExe(['inspect', sample.bundle]);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    expect(res.stdout).toContain(sample.images[0]!.repository);
    for (const s of stderrs) expect(s).not.toMatch(/experimental|Warning/);
  });
});

/** The port from serve's first `--json` line (`{"event":"listening",…}`). */
function listeningPort(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((done, fail) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`serve did not start: ${err}`)), 30_000);
    child.stderr!.on('data', (c) => (err += c));
    child.stdout!.on('data', (c) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      done((JSON.parse(line) as { address: { port: number } }).address.port);
    });
    child.once('close', (code) => fail(new Error(`serve exited ${code}: ${err}`)));
  });
}

describe('the arm64 executable', () => {
  it('is an aarch64 ELF holding the same blob as the x64 one', async () => {
    expect(await elfMachine(join(built, X64))).toBe(EM_X86_64);
    expect(await elfMachine(join(built, ARM64))).toBe(EM_AARCH64);
    const x64Blob = await elfNote(join(built, X64));
    const arm64Blob = await elfNote(join(built, ARM64));
    expect(x64Blob?.length).toBeGreaterThan(100_000);
    expect(arm64Blob?.equals(x64Blob!)).toBe(true);
    // Nothing in the blob is specific to one CPU: the script itself, no code cache.
    expect(x64Blob!.includes(Buffer.from('Carry container images across an air gap'))).toBe(true);
  });

  it('each executable has a .sha256 that sha256sum -c accepts', async () => {
    const res = await runIn(built, '/usr/bin/sha256sum', ['-c', `${X64}.sha256`, `${ARM64}.sha256`], {});
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`${X64}: OK\n${ARM64}: OK\n`);
    for (const name of [X64, ARM64])
      expect(await readFile(join(built, `${name}.sha256`), 'utf8')).toBe(`${sha256(join(built, name))}  ${name}\n`);
  });
});

describe('the arm64 executable under qemu-user', () => {
  const needs = `needs ${QEMU_AARCH64} and ${ARM64_LOADER} (apt-get install qemu-user libc6:arm64 libstdc++6:arm64)`;
  const runArm64 = (args: string[]) => runIn(side, QEMU_AARCH64, [join(built, ARM64), ...args], { PATH: emptyPath });

  it.skipIf(!canRunArm64)(`--version --json: Node.js ${NODE_VERSION} on linux-arm64 (${needs})`, async () => {
    const res = await runArm64(['--version', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      node: NODE_VERSION,
      singleExecutable: true,
      platform: 'linux-arm64',
    });
  });

  it.skipIf(!canRunArm64)(`verifies the sample bundle, hashing on its worker thread (${needs})`, async () => {
    const res = await runArm64(['verify', sample.bundle]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('checksum sidecar: matches');
    expect(res.stderr).toContain('bundle intact');
  });
});

describe('npm run package', () => {
  it('gives byte-identical executables when run again', async () => {
    const again = join(work.path, 'again');
    await buildExecutables(again);
    for (const name of [X64, ARM64]) expect(sha256(join(again, name))).toBe(sha256(join(built, name)));
  }, 300_000);

  it('npm run pin-node, for the pinned version, writes the pin as committed: the hashes come from the registry', async () => {
    const pin = join(work.path, 'node-pin.json');
    await run(process.execPath, [TSX, join(ROOT, 'scripts', 'pin-node.ts'), NODE_VERSION, '--out', pin]);
    expect(await readFile(pin, 'utf8')).toBe(await readFile(NODE_PIN_FILE, 'utf8'));
  }, 300_000);
});

describe('export --with-tool', () => {
  const listFor = async (dir: string) => {
    const list = join(dir, 'images.txt');
    await writeFile(list, `${sample.images[0]!.upstream}\n`);
    return list;
  };

  it('from the executable: copies itself next to a volume set, with a .sha256', async () => {
    const out = join(work.path, 'stick');
    await mkdir(out);
    const list = await listFor(out);
    const res = await runExe([
      'export',
      '-f',
      list,
      '--registry-mirror',
      `*=${sample.upstream.url}`,
      '-o',
      join(out, 'b.tar'),
      '--volume-size',
      '2M',
      '--cache-dir',
      join(work.path, 'cache'),
      '--with-tool',
      '--json',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const reported = JSON.parse(res.stdout) as { tool?: Record<string, unknown> };
    expect(reported.tool).toEqual({
      path: join(out, X64),
      sidecar: join(out, `${X64}.sha256`),
      sha256: sha256(exe),
      bytes: statSync(exe).size,
      arch: 'linux-x64',
      manual: join(out, 'airgap-bundle-docs.html'),
    });
    expect(readdirSync(out).sort()).toEqual(
      ['b.vol001.tar', 'b.vol001.tar.sha256', X64, `${X64}.sha256`, 'airgap-bundle-docs.html', 'images.txt'].sort(),
    );
    // The manual travels inside the executable: every docs/ page, in one file that loads nothing.
    const manual = await readFile(join(out, 'airgap-bundle-docs.html'), 'utf8');
    for (const page of readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')))
      expect(manual, page).toContain(`<section id="${page.slice(0, -3)}">`);
    expect(manual).not.toMatch(/<(script|link|img|iframe)\b|\bsrc=|url\(/i);
    expect(sha256(join(out, X64))).toBe(sha256(exe));
    expect(await readFile(join(out, `${X64}.sha256`), 'utf8')).toBe(`${sha256(exe)}  ${X64}\n`);
    const copied = await runExe(['verify', join(out, 'b.vol001.tar')], { file: join(out, X64) });
    expect(copied.code, copied.stderr).toBe(0);
  });

  it('from the executable, for the other CPU: refuses before any download when that file is not beside it', async () => {
    const out = join(work.path, 'stick-arm');
    await mkdir(out);
    const list = await listFor(out);
    // The mirror is a closed port: reaching it would fail with exit 1, not 2.
    const args = [
      'export',
      '-f',
      list,
      '--registry-mirror',
      '*=http://127.0.0.1:1',
      '-o',
      join(out, 'b.tar'),
      '--with-tool',
      '--tool-arch',
      'arm64',
    ];
    const alone = await runExe(args.filter((a) => a !== '--with-tool'));
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('--tool-arch goes with --with-tool');
    const res = await runExe(args);
    expect(res.code).toBe(2);
    const lines = unexpectedOutput(res.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^airgap-bundle: error: this executable is for linux-x64; for linux-arm64 put airgap-bundle-linux-arm64 \(from `npm run package`\) beside it/,
    );
    expect(await readdir(out)).toEqual(['images.txt']);
    await copyFile(join(built, ARM64), join(side, ARM64));
    await copyFile(join(built, `${ARM64}.sha256`), join(side, `${ARM64}.sha256`));
    const withArm = await runExe([...args.slice(0, 4), `*=${sample.upstream.url}`, ...args.slice(5)]);
    expect(withArm.code, withArm.stderr).toBe(0);
    expect(sha256(join(out, ARM64))).toBe(sha256(join(built, ARM64)));
  });

  it('a stick too small for the executable: exit 1, one clear line, no partial file, the bundle intact', async () => {
    const stick = join(work.path, 'small-stick');
    await mkdir(stick);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', stick]);
    try {
      const list = await listFor(work.path);
      const bundle = join(stick, 'b.tar');
      const res = await runExe([
        'export',
        '-f',
        list,
        '--registry-mirror',
        `*=${sample.upstream.url}`,
        '-o',
        bundle,
        '--with-tool',
      ]);
      expect(res.code).toBe(1);
      expect(unexpectedOutput(res.stderr).pop()).toMatch(
        /^airgap-bundle: error: no space left in .* for airgap-bundle-linux-x64 \(partial file removed\); the bundle is complete/,
      );
      expect(readdirSync(stick).sort()).toEqual(['b.tar', 'b.tar.sha256']);
      expect((await runExe(['verify', bundle])).code).toBe(0);
    } finally {
      await run('umount', ['-l', stick]);
    }
  });

  it('from a checkout: takes dist/, or says to run `npm run package` (exit 2) before downloading', async () => {
    const checkout = join(work.path, 'checkout');
    await cp(dirname(CLI), join(checkout, 'dist'), {
      recursive: true,
      filter: (f) => !f.includes('airgap-bundle-linux-'),
    });
    await copyFile(join(ROOT, 'package.json'), join(checkout, 'package.json'));
    await symlink(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));
    const out = join(work.path, 'from-checkout');
    await mkdir(out);
    const list = await listFor(out);
    const cli = (mirror: string) =>
      runIn(
        out,
        process.execPath,
        [
          join(checkout, 'dist', 'cli.js'),
          'export',
          '-f',
          list,
          '--registry-mirror',
          `*=${mirror}`,
          '-o',
          join(out, 'b.tar'),
          '--with-tool',
          '--tool-arch',
          'arm64',
        ],
        { PATH: process.env.PATH, HOME: checkout, DOCKER_CONFIG: '/nonexistent-docker-config' },
      );
    const refused = await cli('http://127.0.0.1:1');
    expect(refused.code).toBe(2);
    const lines = unexpectedOutput(refused.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^airgap-bundle: error: no airgap-bundle executable for linux-arm64 at hand: run `npm run package`/,
    );
    expect(await readdir(out)).toEqual(['images.txt']);
    for (const f of [ARM64, `${ARM64}.sha256`]) await copyFile(join(built, f), join(checkout, 'dist', f));
    const res = await cli(sample.upstream.url);
    expect(res.code, res.stderr).toBe(0);
    expect(sha256(join(out, ARM64))).toBe(sha256(join(built, ARM64)));
    expect((await runIn(out, '/usr/bin/sha256sum', ['-c', `${ARM64}.sha256`], {})).code).toBe(0);
    expect(await readFile(join(out, `${ARM64}.sha256`), 'utf8')).toBe(`${sha256(join(built, ARM64))}  ${ARM64}\n`);
    // A dist/ file that does not match its own .sha256 is not carried.
    await writeFile(join(checkout, 'dist', `${ARM64}.sha256`), `${'0'.repeat(64)}  ${ARM64}\n`);
    const mismatch = await cli(sample.upstream.url);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('does not match its .sha256');
  });
});
