// A bundle whose metadata was rewritten by whoever held the USB stick, driven through the built CLI.
// Whichever layer refuses it (the metadata parser, or the writers and the output behind it), the
// outcome a user sees is fixed: exit 3, nothing written outside -o, no attacker structure in a
// config file, no raw terminal control in the output. And a large --json report arrives whole
// through a pipe that is read late.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BundleMetadata } from '../../src/bundle/format.js';
import { runCli, startCli, tempDir, type CliResult } from '../helpers/cli.js';
import { editTar } from '../helpers/tar-edit.js';
import { writeTinyBundle } from '../helpers/tiny-bundle.js';

/** Raw bytes a terminal acts on (line breaks aside): ESC, BEL, CR, C1 controls (8-bit CSI U+009B), separators. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/;

const TITLE = '\u001b]0;pwned\u0007';
const CLEAR = '\u001b[2J';
const CSI8 = '\u009b';

let work: { path: string; remove: () => Promise<void> };
let good: string;
let run = 0;

/** A copy of the good bundle with its metadata document changed by `edit`. */
function forge(name: string, edit: (m: BundleMetadata & Record<string, unknown>) => void): string {
  const file = join(work.path, `${name}.tar`);
  editTar(good, file, (entries) =>
    entries.map((e) => {
      if (e.path !== 'airgap-bundle.json') return e;
      const m = JSON.parse(e.data.toString('utf8')) as BundleMetadata & Record<string, unknown>;
      edit(m);
      return { ...e, data: Buffer.from(JSON.stringify(m)) };
    }),
  );
  return file;
}

/** Every path under `dir`, relative to it, `skip` (a folder under it) left out. */
async function listTree(dir: string, skip?: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = join(e.parentPath, e.name);
    if (skip && (full === skip || full.startsWith(`${skip}/`))) continue;
    out.push(relative(dir, full));
  }
  return out.sort();
}

function expectNoRawControls(res: CliResult, what: string): void {
  expect(res.stdout, `${what}: stdout`).not.toMatch(RAW_CONTROL);
  expect(res.stderr, `${what}: stderr`).not.toMatch(RAW_CONTROL);
}

beforeAll(async () => {
  work = await tempDir('airgap-hostile-');
  good = join(work.path, 'good.tar');
  await writeTinyBundle(join(work.path, 'tiny'), good);
});

afterAll(async () => {
  await work?.remove();
});

describe('mirror-config with forged registry names', () => {
  const HOSTILE_REGISTRIES = [
    '../../escape',
    '../../../../escape-deeper',
    'docker.io\n[host."http://evil"]',
    'docker.io"]\n[host."http://evil"]\ncapabilities = ["pull"',
  ];
  const FORMATS = [
    { format: 'containerd', target: 'certs.d' },
    { format: 'talos', target: 'patch.yaml' },
    { format: 'talos-multidoc', target: 'docs.yaml' },
    { format: 'k3s', target: 'registries.yaml' },
  ];

  it('exit 3 for every format, nothing written outside -o, no attacker text under it', async () => {
    for (const [i, registry] of HOSTILE_REGISTRIES.entries()) {
      const bundle = forge(`registry-${i}`, (m) => {
        m.images[0]!.registry = registry;
      });
      for (const { format, target } of FORMATS) {
        for (const mapping of [['--keep-registry-host'], []]) {
          const parent = join(work.path, `run-${run++}`, 'a', 'b');
          const outDir = join(parent, 'out');
          await mkdir(outDir, { recursive: true });
          const before = await listTree(work.path, outDir);
          const res = await runCli([
            'mirror-config',
            '--format',
            format,
            '--endpoint',
            'http://10.5.0.1:6000',
            ...mapping,
            '--bundle',
            bundle,
            '-o',
            join(outDir, target),
          ]);
          const what = `${format} ${mapping.join(' ')} registry ${JSON.stringify(registry)}`;
          expect(res.code, `${what}: ${res.stderr}`).toBe(3);
          expect(await listTree(work.path, outDir), what).toEqual(before);
          expect(existsSync(join(work.path, 'escape')) || existsSync(join(parent, 'escape')), what).toBe(false);
          // Refused before anything is written: the output folder stays empty.
          expect(await listTree(outDir), what).toEqual([]);
          expectNoRawControls(res, what);
          expect(res.stderr.trim().split('\n'), what).toHaveLength(1);
        }
      }
    }
  });

  it('a valid bundle still writes its hosts.toml folders under -o, and only there', async () => {
    const outDir = join(work.path, `run-${run++}`, 'out');
    await mkdir(outDir, { recursive: true });
    const before = await listTree(work.path, outDir);
    const res = await runCli([
      'mirror-config',
      '--format',
      'containerd',
      '--endpoint',
      'http://10.5.0.1:6000',
      '--keep-registry-host',
      '--bundle',
      good,
      '-o',
      join(outDir, 'certs.d'),
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(await listTree(work.path, outDir)).toEqual(before);
    expect(await listTree(outDir)).toEqual([
      'certs.d',
      'certs.d/registry.example',
      'certs.d/registry.example/hosts.toml',
    ]);
    const toml = await readFile(join(outDir, 'certs.d', 'registry.example', 'hosts.toml'), 'utf8');
    expect(toml).toContain('server = "http://10.5.0.1:6000/v2/registry.example"');
  });
});

describe('terminal escapes in the metadata', () => {
  let bundle: string;
  beforeAll(() => {
    bundle = forge('escapes', (m) => {
      m.images[0]!.reference = `${m.images[0]!.reference}${TITLE}${CLEAR}${CSI8}\nbundle intact`;
      m.tool.version = `1.0${TITLE}${CLEAR}`;
      m.created = `2024-01-01T00:00:00Z${CSI8}2J\u001b]0;bundle intact\u0007`;
    });
  });

  const COMMANDS = [
    ['inspect'],
    ['inspect', '--json'],
    ['verify'],
    ['verify', '--json'],
    ['mirror-config', '--endpoint', 'http://10.5.0.1:6000', '--bundle'],
    [
      'mirror-config',
      '--format',
      'containerd',
      '--endpoint',
      'http://10.5.0.1:6000',
      '--keep-registry-host',
      '--bundle',
    ],
  ];

  it('never reach stdout or stderr raw, whichever command reads them', async () => {
    for (const args of COMMANDS) {
      const res = await runCli([...args, bundle]);
      const what = args.join(' ');
      expectNoRawControls(res, what);
      // A line break in a bundle string is shown as \n: it cannot start a forged line.
      expect(`${res.stdout}\n${res.stderr}`.split('\n'), what).not.toContain('bundle intact');
      if (res.code !== 0) {
        // Refused as damaged, with one final line saying so.
        expect(res.code, `${what}: ${res.stderr}`).toBe(3);
        expect(res.stderr.trim().split('\n').at(-1)).toMatch(/^airgap-bundle: /);
      } else if (args[0] === 'inspect') {
        // Or shown, with the controls made visible.
        if (args.includes('--json')) expect(JSON.stringify(JSON.parse(res.stdout))).toContain('\\u001b]0;pwned');
        else expect(res.stdout).toContain('\\x1b]0;pwned\\x07');
      } else {
        // mirror-config uses no reference, version or date; verify never calls such a bundle intact.
        expect(args[0], `${what}: exit 0`).toBe('mirror-config');
        expect(res.stdout).not.toContain('pwned');
      }
    }
  });
});

describe('output through a pipe', () => {
  let big: string;
  beforeAll(() => {
    // 3,000 images the bundle's index.json does not know: a damaged bundle whose --json report is far
    // larger than a pipe's buffer (64 KiB).
    big = forge('many-images', (m) => {
      const model = m.images[1]!;
      for (let i = 0; i < 3000; i++)
        m.images.push({ ...model, reference: `registry.example/fuzz/tool${i}:v1`, repository: `fuzz/tool${i}` });
    });
  });

  /**
   * Runs the CLI and reads its stdout only once the final error line is on
   * stderr and the process had time to exit: a CLI that exits with writes
   * pending loses everything past the pipe's buffer.
   */
  function runWithLateReader(args: string[]): Promise<CliResult> {
    return new Promise((resolvePromise, reject) => {
      const child = startCli(args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, DOCKER_CONFIG: '/nonexistent-docker-config' },
      });
      let stdout = '';
      let stderr = '';
      let reading = false;
      const startReading = () => {
        if (reading) return;
        reading = true;
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      };
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
        if (/^airgap-bundle: .*\n/m.test(stderr)) setTimeout(startReading, 1500);
      });
      child.on('exit', () => setTimeout(startReading, 500));
      child.on('error', reject);
      child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    });
  }

  it('verify --json of a damaged bundle: the whole report, then the error line, exit 3', async () => {
    const res = await runWithLateReader(['verify', big, '--json']);
    expect(res.code, res.stderr).toBe(3);
    expect(res.stdout.length).toBeGreaterThan(256 * 1024);
    const report = JSON.parse(res.stdout) as { ok: boolean; images: unknown[] };
    expect(report.ok).toBe(false);
    expect(report.images).toHaveLength(3002);
    expect(res.stderr).toMatch(/^airgap-bundle: .*many-images\.tar is damaged: .*\n$/);
  });

  it('a reader that leaves early costs no stack trace and keeps the exit code', async () => {
    const res = await new Promise<CliResult>((resolvePromise, reject) => {
      const child = startCli(['verify', big, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stdout.once('data', () => child.stdout.destroy());
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code, signal) => resolvePromise({ code, signal, stdout: '', stderr }));
    });
    expect(res.signal).toBeNull();
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(res.stderr).toMatch(/^airgap-bundle: .*is damaged/);
  });
});
