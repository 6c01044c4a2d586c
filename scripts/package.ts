/**
 * `npm run package`: one executable per architecture, Node.js inside, nothing to install beside it:
 *   dist/airgap-bundle-linux-x64, dist/airgap-bundle-linux-arm64, each with its `.sha256`.
 *
 * The CLI is bundled into one CommonJS script (esbuild), Node turns it into a single-executable blob,
 * and postject injects the blob into the official Node binary of the pinned version for each CPU.
 * Every input is pinned (the sources, esbuild and postject by the lockfile, the Node binaries by hash in
 * scripts/node-pin.json, which `npm run pin-node` rewrites), so two builds of the same commit give
 * byte-identical executables.
 *
 *   tsx scripts/package.ts [--out DIR] [--arch x64|arm64 ...]
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildManual } from './docs-manual.js';
import { bundleCli } from './lib/package-bundle.js';
import { EMBEDDED_MANUAL_KEY, type Manual } from '../src/docs/manual.js';
import { NODE_VERSION, pinnedNode, sha256File, TARGET_ARCHES, type TargetArch } from './lib/package-node.js';
import { injectBlob, prepareBlob } from './lib/package-sea.js';

const root = resolve(import.meta.dirname, '..');

interface PackageOptions {
  out: string;
  arches: TargetArch[];
}

function parseArgs(argv: string[]): PackageOptions {
  let out = join(root, 'dist');
  const arches: TargetArch[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--out' && value) out = resolve(value);
    else if (arg === '--arch' && (TARGET_ARCHES as string[]).includes(value ?? '')) arches.push(value as TargetArch);
    else throw new Error(`usage: tsx scripts/package.ts [--out DIR] [--arch x64|arm64 ...] (got ${arg})`);
    i++;
  }
  return { out, arches: arches.length > 0 ? arches : [...TARGET_ARCHES] };
}

/** The executable's name for one architecture; `export --with-tool` looks for the same names. */
function executableName(arch: TargetArch): string {
  return `airgap-bundle-linux-${arch}`;
}

async function main(): Promise<void> {
  const { out, arches } = parseArgs(process.argv.slice(2));
  const host = process.arch;
  if (host !== 'x64' && host !== 'arm64')
    throw new Error(`building needs an x64 or arm64 machine, this one is ${host}`);
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  const cache = join(root, 'node_modules', '.cache', 'airgap-bundle-package');
  const work = join(out, '.package');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    await bundleCli(root, join(work, 'airgap-bundle.cjs'), version);
    await embedManual(join(work, 'airgap-bundle.cjs'), await buildManual(root));
    // The blob is prepared by the pinned Node of this machine's CPU, and serves both.
    await prepareBlob(await pinnedNode(host, cache), work, 'airgap-bundle.cjs', 'airgap-bundle.blob');
    for (const arch of arches) {
      const output = join(out, executableName(arch));
      await injectBlob(await pinnedNode(arch, cache), join(work, 'airgap-bundle.blob'), output);
      const sha256 = await writeSidecar(output, executableName(arch));
      if (arch === host) await smokeTest(output, version);
      process.stdout.write(`${output}  (Node ${NODE_VERSION}, ${arch})  sha256 ${sha256}\n`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Puts the manual (docs/ as `help` prints it, and the HTML file `export --with-tool` writes) inside
 * the script, where src/docs/manual.ts looks first: the executable reads no file for it. Set right
 * after the script's "use strict" directive, which must stay first to keep the script strict.
 */
async function embedManual(script: string, manual: Manual): Promise<void> {
  const code = await readFile(script, 'utf8');
  const directive = /^(?:#![^\n]*\n)?(?:"use strict";\n)?/.exec(code)![0];
  const assignment = `globalThis[${JSON.stringify(EMBEDDED_MANUAL_KEY)}] = ${JSON.stringify(manual)};\n`;
  await writeFile(script, `${directive}${assignment}${code.slice(directive.length)}`);
}

/** Writes `NAME.sha256` beside the executable, as `sha256sum -c` reads it. */
async function writeSidecar(output: string, name: string): Promise<string> {
  const sha256 = await sha256File(output);
  await writeFile(`${output}.sha256.partial`, `${sha256}  ${name}\n`);
  await rename(`${output}.sha256.partial`, `${output}.sha256`);
  return sha256;
}

/**
 * Runs the executable built for this machine with an empty environment: `--version` prints the
 * version, and a command that lives past start-up (`images`, where a warning Node emits on the next
 * tick would show) prints its result and nothing on stderr.
 */
async function smokeTest(executable: string, version: string): Promise<void> {
  const checks: [string[], string][] = [
    [['--version'], `${version}\n`],
    [['images', 'busybox'], 'docker.io/library/busybox:latest  # from argument 1\n'],
  ];
  for (const [args, expected] of checks) {
    const { stdout, stderr, error } = await new Promise<{ stdout: string; stderr: string; error: Error | null }>(
      (done) => execFile(executable, args, { env: {} }, (error, stdout, stderr) => done({ stdout, stderr, error })),
    );
    if (error || stdout !== expected || stderr !== '')
      throw new Error(`${executable} ${args.join(' ')} printed "${stdout.trim()}" and "${stderr.trim()}"`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`package: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
