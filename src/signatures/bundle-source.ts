import { readSmallBlob, type BlobLocation } from '../bundle/blob-ranges.js';
import type { BlobSeen } from '../bundle/open/blob-check.js';
import { MAX_PAYLOAD_BYTES, type SignatureSource } from './check-images.js';

/** One file of a bundle as the gate read it: where each blob is, and what each document parsed to. */
export interface ReadFile {
  path: string;
  blobs: Map<string, BlobLocation>;
  seen: Map<string, BlobSeen>;
}

/**
 * Signatures as a bundle carries them: manifests as the gate parsed them, a
 * payload read by offset from whichever file holds it, checked against its digest.
 */
export function bundleSignatureSource(files: ReadFile[]): SignatureSource {
  return {
    manifest: (digest) => files.find((f) => f.seen.has(digest))?.seen.get(digest)?.parsed,
    payload: async (digest) => {
      const f = files.find((x) => x.blobs.has(digest));
      return f ? readSmallBlob(f.path, digest, f.blobs.get(digest)!, MAX_PAYLOAD_BYTES) : undefined;
    },
  };
}
