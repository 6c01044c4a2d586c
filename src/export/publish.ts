import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import ssri from 'ssri';
import type { BundleMetadata } from '../bundle/format.js';
import { sidecarLine } from '../bundle/sidecar.js';
import { processAlive } from '../util/process.js';

/**
 * Publishing a bundle: it is written under a hidden temporary name beside its
 * final name and renamed only when complete, with its sidecar and signature,
 * so the final name never holds a partial bundle. Temporaries of dead runs are
 * found by the process id in their names.
 */

export interface WriteResult {
  path: string;
  sidecar: string;
  bytes: number;
  sha256: string;
  /** SRI form of the same checksum (`sha256-<base64>`). */
  integrity: string;
  metadata: BundleMetadata;
}

/** Temporary files being written right now: what an interrupted export must remove. */
export const activePartials = new Set<string>();

/** The temporary name a bundle is written under, beside its final name. */
export function partialPath(output: string): string {
  return join(dirname(output), `.${basename(output)}.partial-${process.pid}`);
}

/**
 * Gives a complete tar on disk (`tmp`, fsynced) its final name, with the sidecar
 * and the detached signature written first under temporary names: a reader that
 * sees NAME.tar sees a whole bundle.
 */
export async function publishBundle(
  tmp: string,
  output: string,
  done: { bytes: number; sha256: string; metadata: BundleMetadata; signature?: Buffer },
): Promise<WriteResult> {
  const sidecar = `${output}.sha256`;
  const extras = [{ tmp: `${tmp}.sha256`, final: sidecar, text: sidecarLine(done.sha256, basename(output)) }];
  if (done.signature) extras.push({ tmp: `${tmp}.sig`, final: `${output}.sig`, text: done.signature.toString('utf8') });
  for (const e of extras) activePartials.add(e.tmp);
  try {
    for (const e of extras) await writeSmallFile(e.tmp, e.text);
    await rename(tmp, output);
    for (const e of extras) await rename(e.tmp, e.final);
  } catch (err) {
    for (const e of extras) await rm(e.tmp, { force: true });
    throw err;
  } finally {
    for (const e of extras) activePartials.delete(e.tmp);
  }
  const integrity = ssri.fromHex(done.sha256, 'sha256').toString();
  return { path: output, sidecar, bytes: done.bytes, sha256: done.sha256, integrity, metadata: done.metadata };
}

/**
 * Temporary files of earlier runs that were killed (SIGKILL, power loss): named
 * after a process that no longer exists, they can only be garbage.
 */
export async function removeStalePartials(output: string): Promise<void> {
  for (const path of await stalePartials(output)) await rm(path, { force: true });
}

/** Temporary files beside `output` left by processes that no longer exist. */
export async function stalePartials(output: string): Promise<string[]> {
  const prefix = `.${basename(output)}.partial-`;
  let names: string[];
  try {
    names = await readdir(dirname(output));
  } catch {
    return [];
  }
  return names
    .filter((name) => {
      if (!name.startsWith(prefix)) return false;
      const pid = Number(/^(\d+)/.exec(name.slice(prefix.length))?.[1]);
      return Number.isInteger(pid) && pid !== process.pid && !processAlive(pid);
    })
    .map((name) => join(dirname(output), name));
}

export async function writeSmallFile(path: string, text: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
