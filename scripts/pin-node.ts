/**
 * `npm run pin-node [-- VERSION] [--out FILE]`: pins the Node.js that `npm run package` builds on.
 * Without VERSION, the newest release of the pinned major line in the npm registry (a security
 * release of the same LTS line). For each CPU it fetches the package with `npm pack`, checks the
 * tarball against the integrity the registry publishes, and writes both hashes to
 * scripts/node-pin.json (or FILE); review the diff and commit it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  extractNode,
  integrityOf,
  NODE_PIN_FILE,
  NODE_VERSION,
  nodePackage,
  packPackage,
  TARGET_ARCHES,
  type NodePin,
  type PinnedNode,
  type TargetArch,
} from './lib/package-node.js';
import { run } from './lib/process.js';

interface PinOptions {
  version: string | undefined;
  out: string;
}

function parseArgs(argv: string[]): PinOptions {
  const options: PinOptions = { version: undefined, out: NODE_PIN_FILE };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--out' && argv[i + 1]) options.out = resolve(argv[++i]!);
    else if (/^\d+\.\d+\.\d+$/.test(arg)) options.version = arg;
    else throw new Error(`usage: tsx scripts/pin-node.ts [VERSION] [--out FILE] (got ${arg})`);
  }
  return options;
}

/** The newest published version of `major` (the line pinned now), as `npm view` lists them. */
async function newestOfLine(major: string): Promise<string> {
  const { stdout } = await run('npm', ['view', nodePackage('x64'), 'versions', '--json']);
  const versions = (JSON.parse(stdout) as string[]).filter(
    (v) => /^\d+\.\d+\.\d+$/.test(v) && v.startsWith(`${major}.`),
  );
  const newest = versions.sort(byVersion).pop();
  if (!newest) throw new Error(`no ${nodePackage('x64')} ${major}.x in the registry`);
  return newest;
}

function byVersion(a: string, b: string): number {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if (x![i] !== y![i]) return x![i]! - y![i]!;
  return 0;
}

/** Both hashes of one CPU's package at `version`, the tarball checked against the registry's own integrity. */
async function pinArch(arch: TargetArch, version: string, work: string): Promise<PinnedNode> {
  const pkg = nodePackage(arch);
  const spec = `${pkg}@${version}`;
  const published = (await run('npm', ['view', spec, 'dist.integrity'])).stdout.trim();
  const tarball = await packPackage(spec, work);
  const integrity = await integrityOf(tarball);
  if (integrity !== published)
    throw new Error(`${spec}: tarball integrity ${integrity}, the registry says ${published}`);
  const binSha256 = await extractNode(tarball, join(work, `node-${arch}`));
  return { pkg, integrity, binSha256 };
}

async function main(): Promise<void> {
  const { version: asked, out } = parseArgs(process.argv.slice(2));
  const version = asked ?? (await newestOfLine(NODE_VERSION.split('.')[0]!));
  const work = await mkdtemp(join(tmpdir(), 'airgap-pin-node-'));
  try {
    const pin = { version } as NodePin;
    for (const arch of TARGET_ARCHES) pin[arch] = await pinArch(arch, version, work);
    await writeFile(out, `${JSON.stringify(pin, null, 2)}\n`);
    process.stdout.write(
      `${out}: Node.js ${version}${version === NODE_VERSION ? ' (unchanged)' : ` (was ${NODE_VERSION})`}\n`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`pin-node: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
