// Node's single executable applications: the bundled script is turned into a blob by Node itself
// (`--experimental-sea-config`), and the blob is injected with postject into a copy of a Node binary
// of the same version. Node 24 still has no built-in injection (`--build-sea` came with 25.5), and its
// blob is still found through the same fuse and ELF note. The blob holds no code cache and no snapshot
// (both are specific to one CPU and one V8 build), so one blob serves every architecture, and the same
// script gives the same bytes.
import { execFile } from 'node:child_process';
import { copyFile, chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { elfNote } from './package-elf.js';
import { run } from './process.js';

/** The fuse Node looks for to know a blob was injected (postject flips its last character). */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * Prepares `dir/blob` from `dir/script` with `node` (the pinned version, runnable here). Node runs in
 * `dir` and is given both names relative to it, so no path of this machine ends up in the blob.
 */
export async function prepareBlob(node: string, dir: string, script: string, blob: string): Promise<void> {
  const config = {
    main: script,
    output: blob,
    // The executable is the product: a warning on every run about how it was made is noise.
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    // A code cache is V8 bytecode for the CPU that made it: it would be wrong for the other one.
    useCodeCache: false,
    // The executable runs the same whatever the environment holds: NODE_OPTIONS (a `--require`, an
    // `--inspect`, a heap limit meant for another program) is not read, and no Node option is set.
    execArgv: [],
    execArgvExtension: 'none',
  };
  await writeFile(join(dir, 'sea-config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await new Promise<void>((resolve, reject) =>
    execFile(node, ['--experimental-sea-config', 'sea-config.json'], { cwd: dir }, (err, _out, stderr) =>
      err ? reject(new Error(`${node} --experimental-sea-config failed: ${stderr.trim() || err.message}`)) : resolve(),
    ),
  );
}

/**
 * Writes `output`: a copy of `node` with `blob` injected, mode 0755. Written under a temporary name
 * and renamed, so `output` is never a half-made executable; the injected note is read back and compared.
 */
export async function injectBlob(node: string, blob: string, output: string): Promise<void> {
  const partial = join(dirname(output), `.${basename(output)}.partial-${process.pid}`);
  try {
    await copyFile(node, partial);
    await chmod(partial, 0o755);
    // postject runs in a child process: its WebAssembly runtime installs process-wide handlers.
    const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
    await run(process.execPath, [postject, partial, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
    const injected = await elfNote(partial);
    const expected = await readFile(blob);
    if (!injected || !injected.equals(expected)) throw new Error(`postject did not store the blob in ${output}`);
    await rename(partial, output);
  } finally {
    await rm(partial, { force: true });
  }
}
