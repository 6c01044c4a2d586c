import { createHash } from 'node:crypto';
import type { ParsedManifest } from '../oci/manifest.js';
import type { Repository } from '../registry/repository.js';
import { MAX_PAYLOAD_BYTES, type SignatureSource } from './check-images.js';

/** A manifest of an artifact as export resolved it, and the repository its layers are fetched from. */
export interface ResolvedSignature {
  digest: string;
  parsed: ParsedManifest;
  repo: Repository;
}

/**
 * Signatures where export finds them, before a blob is written: manifests as
 * resolved, each payload fetched (a few hundred bytes, bounded) and checked
 * against its digest. Nothing is kept but what the check returns.
 */
export function registrySignatureSource(signatures: ResolvedSignature[]): SignatureSource {
  const manifests = new Map(signatures.map((s) => [s.digest, s]));
  const payloadRepo = new Map<string, Repository>();
  for (const s of signatures)
    if (s.parsed.kind === 'image') for (const l of s.parsed.layers) payloadRepo.set(l.digest, s.repo);
  return {
    manifest: (digest) => manifests.get(digest)?.parsed,
    payload: async (digest) => {
      const repo = payloadRepo.get(digest);
      return repo ? fetchSmall(repo, digest) : undefined;
    },
  };
}

/** A small blob read whole, or undefined when it is longer than a payload may be or not the bytes its digest names. */
async function fetchSmall(repo: Repository, digest: string): Promise<Buffer | undefined> {
  const blob = await repo.openBlob(digest);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of blob.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_PAYLOAD_BYTES) {
      blob.body.destroy();
      return undefined;
    }
    parts.push(chunk as Buffer);
  }
  const bytes = Buffer.concat(parts);
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` === digest ? bytes : undefined;
}
