import { rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import ssri from 'ssri';
import type { BundleMetadata } from '../bundle/format.js';
import { sidecarLine } from '../bundle/sidecar.js';
import { partialPath, removeStalePartials, syncFolder, writePartial } from '../util/atomic-file.js';

/**
 * Publishing a bundle: it is written under its partial name beside its final
 * name (see util/atomic-file.ts) and renamed only when complete, with its
 * sidecar and signature, so the final name never holds a partial bundle.
 * Partials of dead runs are found by the process id in their names.
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
  const extras = [{ final: sidecar, text: sidecarLine(done.sha256, basename(output)) }];
  if (done.signature) extras.push({ final: `${output}.sig`, text: done.signature.toString('utf8') });
  const partials = extras.map((e) => ({ ...e, partial: partialPath(e.final) }));
  for (const e of partials) activePartials.add(e.partial);
  try {
    for (const e of partials) {
      await removeStalePartials(e.final);
      await rm(e.partial, { force: true });
      await writePartial(e.partial, e.text);
    }
    // The bundle first: its sidecar beside it says it is complete.
    await rename(tmp, output);
    for (const e of partials) await rename(e.partial, e.final);
    await syncFolder(dirname(output));
  } catch (err) {
    for (const e of partials) await rm(e.partial, { force: true });
    throw err;
  } finally {
    for (const e of partials) activePartials.delete(e.partial);
  }
  const integrity = ssri.fromHex(done.sha256, 'sha256').toString();
  return { path: output, sidecar, bytes: done.bytes, sha256: done.sha256, integrity, metadata: done.metadata };
}
