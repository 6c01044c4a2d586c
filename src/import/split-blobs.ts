import { Readable } from 'node:stream';
import { verified } from '../oci/digest.js';
import type { BlobPart } from '../bundle/format.js';
import type { BlobLocation } from '../bundle/blob-ranges.js';

/**
 * A blob cut across volumes cannot be pushed until all its parts can be read
 * at once. Volumes arrive one per run, and the registry is the only state kept
 * between runs: a run that cannot finish the blob pushes the parts it carries
 * as blobs of their own (named by their digests, into the repository that will
 * hold the whole), and the run that brings the last part reads the others back
 * from the registry. Unreferenced, the parts are removed by the registry's
 * garbage collection.
 */
export interface PartSources {
  /** Parts in the volume being imported: where they sit in its tar (read from there first). */
  local: Map<string, BlobLocation>;
  /** Parts the registry already holds (pushed by an earlier run). */
  staged: Set<string>;
  /** Volumes whose parts are in neither place yet. */
  waitingFor: number[];
}

export async function locateParts(
  parts: BlobPart[],
  volume: number,
  inTar: Map<string, BlobLocation>,
  staged: (digest: string) => Promise<boolean>,
): Promise<PartSources> {
  const out: PartSources = { local: new Map(), staged: new Set(), waitingFor: [] };
  const seen = new Set<string>();
  for (const p of parts) {
    if (seen.has(p.digest)) continue;
    seen.add(p.digest);
    const at = p.volume === volume ? inTar.get(p.digest) : undefined;
    if (at) out.local.set(p.digest, at);
    if (await staged(p.digest)) out.staged.add(p.digest);
    else if (!at && !out.waitingFor.includes(p.volume)) out.waitingFor.push(p.volume);
  }
  out.waitingFor.sort((a, b) => a - b);
  return out;
}

/**
 * The whole blob, part after part, each part read (and checked against its own
 * digest) from the tar or the registry, and the whole checked against the
 * blob's digest: a wrong byte anywhere fails the stream before the upload
 * completes.
 */
export function joinParts(
  blob: { digest: string; size: number },
  parts: BlobPart[],
  sources: PartSources,
  read: {
    local: (part: BlobPart, at: BlobLocation) => AsyncIterable<Buffer>;
    staged: (part: BlobPart) => AsyncIterable<Buffer>;
  },
  onBytes?: (n: number) => void,
): Readable {
  async function* concatenated(): AsyncGenerator<Buffer> {
    for (const p of parts) {
      const at = sources.local.get(p.digest);
      yield* at ? read.local(p, at) : read.staged(p);
    }
  }
  return verified(Readable.from(concatenated(), { objectMode: false }), blob, onBytes);
}
