import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { sidecarLine } from '../bundle/sidecar.js';
import { isDiskFull } from '../util/disk-full.js';
import { writeAtomically, writeFileAtomic } from '../util/atomic-file.js';
import { toolFileName, type ToolSource } from './locate.js';

export interface CopiedTool {
  path: string;
  sidecar: string;
  sha256: string;
  bytes: number;
}

/**
 * Copies the executable to `dir` under its canonical name, with its `.sha256`
 * (as `sha256sum -c` reads it), hashing while it copies. Each is written
 * atomically (util/atomic-file.ts): the final name never holds a partial
 * executable. When the executable already is that file (the tool runs from the
 * stick it exports to), it is only hashed.
 */
export async function copyTool(source: ToolSource, dir: string): Promise<CopiedTool> {
  const name = toolFileName(source.arch);
  const path = join(dir, name);
  try {
    const writeSidecar = (sha256: string) => writeFileAtomic(`${path}.sha256`, sidecarLine(sha256, name), 0o644);
    const same = (await realpathOrUndefined(path)) === (await realpath(source.path));
    const { sha256, bytes } = same
      ? await checked(source, await hashFile(path))
      : await writeAtomically(path, async (partial) => {
          const copied = checked(source, await copyHashing(source.path, partial));
          // The checksum is published first: a disk that fills leaves no executable without its .sha256.
          await writeSidecar(copied.sha256);
          return copied;
        });
    if (same) await writeSidecar(sha256);
    return { path, sidecar: `${path}.sha256`, sha256, bytes };
  } catch (err) {
    if (isDiskFull(err))
      throw new Error(
        `no space left in ${dir} for ${name} (partial file removed); the bundle is complete: free space and rerun, or copy ${source.path} there by hand`,
        { cause: err },
      );
    throw err;
  }
}

/** `copied`, once it matched the `.sha256` the executable came with (when it came with one). */
function checked(source: ToolSource, copied: { sha256: string; bytes: number }): { sha256: string; bytes: number } {
  if (source.sha256 !== undefined && copied.sha256 !== source.sha256)
    throw new Error(
      `${source.path} does not match its .sha256 (sha256 ${copied.sha256}, expected ${source.sha256}): rebuild it with \`npm run package\``,
    );
  return copied;
}

async function realpathOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch {
    return undefined;
  }
}

async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Streams `from` to `to` (mode 0755), hashing every byte on its way. */
async function copyHashing(from: string, to: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(
    createReadStream(from),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(to, { flags: 'wx', mode: 0o755 }),
  );
  await chmod(to, 0o755); // whatever the umask took away
  return { sha256: hash.digest('hex'), bytes };
}
