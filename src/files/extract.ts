import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readBlob, type BlobLocation } from '../bundle/blob-ranges.js';
import type { CheckedFile } from '../bundle/open/structure.js';
import { BundleFormatError } from '../bundle/reader.js';
import { DigestMismatchError } from '../oci/digest.js';
import { writeAtomically } from '../util/atomic-file.js';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';
import type { CarriedFile } from './carried-files.js';

/** A carried file whose bytes do not match its digest: the bundle is damaged (exit 3), the file not written. */
export class DamagedFileError extends BundleFormatError {
  override name = 'DamagedFileError';
  constructor(bundle: string, name: string) {
    super(
      `${printable(bundle)} is damaged: the bytes of ${printable(name)} do not match its digest, so it was not written; copy the bundle again (\`airgap-bundle verify\` lists every damaged blob)`,
    );
  }
}

interface Located {
  path: string;
  at: BlobLocation;
  digest: string;
}

/**
 * Where each blob (or part of one) is among the files given: one bundle, or
 * volumes of a set, each of which passed the gate.
 */
export function locateBlobs(opened: CheckedFile[]): Map<string, { path: string; at: BlobLocation }> {
  const out = new Map<string, { path: string; at: BlobLocation }>();
  for (const o of opened) for (const [d, at] of o.blobs) if (!out.has(d)) out.set(d, { path: o.path, at });
  return out;
}

/** The pieces of `file`'s bytes in order, or a refusal naming what to give. */
function piecesOf(file: CarriedFile, where: ReturnType<typeof locateBlobs>): Located[] {
  if (file.blob.external)
    throw new UserInputError(
      `${printable(file.name)} is left out of this delta bundle (the isolated side already had it); take it from the bundle the delta was made against`,
    );
  const parts = file.blob.parts ?? [{ digest: file.digest, volume: file.blob.volume }];
  return parts.map((p) => {
    const loc = where.get(p.digest);
    if (!loc)
      throw new UserInputError(
        `${printable(file.name)} is in volume ${p.volume ?? '?'} of the set, not given; give every volume that holds it`,
      );
    return { ...loc, digest: p.digest };
  });
}

/**
 * Writes `file` to `dir/NAME`: read from the bundle by offset, each piece
 * hashed against its own digest and the whole against the file's, written
 * under a hidden partial name, its mode set, and renamed only when every
 * byte matched. A damaged file leaves nothing under its name.
 */
export async function extractFile(
  file: CarriedFile,
  where: ReturnType<typeof locateBlobs>,
  dir: string,
  onBytes?: (n: number) => void,
): Promise<string> {
  const pieces = piecesOf(file, where);
  const target = join(dir, file.name);
  await writeAtomically(target, async (partial) => {
    const out = await open(partial, 'wx', 0o600);
    try {
      const whole = createHash('sha256');
      let size = 0;
      for (const piece of pieces)
        for await (const chunk of hashedPiece(piece, file.name, onBytes)) {
          whole.update(chunk);
          size += chunk.length;
          await out.write(chunk);
        }
      if (size !== file.size || `sha256:${whole.digest('hex')}` !== file.digest)
        throw new DamagedFileError(pieces[0]!.path, file.name);
      // Set after writing: the mode given at creation is cut by the umask, and a read-only mode would refuse the writes.
      await out.chmod(file.mode);
      await out.sync();
    } finally {
      await out.close();
    }
  });
  return target;
}

async function* hashedPiece(piece: Located, name: string, onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of readBlob(piece.path, piece.digest, piece.at, onBytes)) yield chunk as Buffer;
  } catch (err) {
    if (err instanceof DigestMismatchError) throw new DamagedFileError(piece.path, name);
    throw err;
  }
}
