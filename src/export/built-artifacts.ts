import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { IMAGE_BOUNDS } from '../bundle/format.js';
import type { BuiltArtifact, BuiltBlob } from '../oci/artifact.js';
import { sha256Digest } from '../oci/digest.js';
import { resolveImage, type ResolvedImage } from '../oci/resolve.js';
import { CARRIED_REGISTRY } from '../reference/mapping.js';
import { formatReference, parseReference, ReferenceError, type Reference } from '../reference/reference.js';
import type { OpenedBlob } from '../registry/blobs.js';
import { printable } from '../util/text.js';

/**
 * Where collect reads a blob from: a repository of a registry, or the content
 * of an artifact this tool built (a chart, a file). Named for messages.
 */
export interface BlobOrigin {
  readonly registry: string;
  readonly name: string;
  openBlob(digest: string): Promise<OpenedBlob>;
}

/** A built artifact resolved like an image: its manifest walked, its blobs readable from where they are. */
export interface ResolvedBuilt {
  ref: Reference;
  name: string;
  image: ResolvedImage;
  origin: BlobOrigin;
  artifact: BuiltArtifact;
}

/** A built artifact that cannot be carried: a defect of whatever built it, named. */
export class BuiltArtifactError extends Error {
  override name = 'BuiltArtifactError';
}

/**
 * Every built artifact walked through the same manifest parser as a
 * registry's images (the bundle must hold nothing an image could not), each
 * name once, and each blob its manifest lists present in what was built.
 */
export async function resolveBuilt(built: readonly BuiltArtifact[]): Promise<ResolvedBuilt[]> {
  const names = new Set<string>();
  const out: ResolvedBuilt[] = [];
  for (const artifact of built) {
    const ref = carriedReference(artifact);
    const name = formatReference(ref);
    if (names.has(name))
      throw new BuiltArtifactError(
        `two carried ${artifact.carried.kind}s would both be ${name}: give one another name`,
      );
    names.add(name);
    const digest = sha256Digest(artifact.manifest);
    const image = await resolveImage(
      digest,
      async () => ({ bytes: artifact.manifest, mediaType: undefined, digest }),
      undefined,
      name,
      IMAGE_BOUNDS,
    );
    out.push({ ref, name, image, origin: builtOrigin(name, artifact, image), artifact });
  }
  return out;
}

function carriedReference(artifact: BuiltArtifact): Reference {
  const text = `${CARRIED_REGISTRY}/${artifact.repository}:${artifact.tag}`;
  try {
    const ref = parseReference(text);
    if (formatReference(ref) === text) return ref;
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
  }
  throw new BuiltArtifactError(
    `carried ${artifact.carried.kind} ${printable(artifact.carried.name)}: "${printable(text)}" is no valid reference`,
  );
}

/** Reads the blobs of one built artifact; a blob its manifest lists but the build lacks is refused up front. */
function builtOrigin(name: string, artifact: BuiltArtifact, image: ResolvedImage): BlobOrigin {
  const byDigest = new Map<string, BuiltBlob>(artifact.blobs.map((b) => [b.digest, b]));
  for (const b of image.blobs) {
    const have = byDigest.get(b.digest);
    if (!have || have.size !== b.size)
      throw new BuiltArtifactError(`${name}: its manifest lists ${b.digest} (${b.size} bytes), which was not built`);
  }
  return {
    registry: CARRIED_REGISTRY,
    name: artifact.repository,
    openBlob: async (digest) => {
      const blob = byDigest.get(digest);
      if (!blob) throw new BuiltArtifactError(`${name}: no blob ${digest}`);
      // The store hashes what it is given: a local file changed since it was built is caught there.
      const body = 'bytes' in blob.content ? Readable.from([blob.content.bytes]) : createReadStream(blob.content.path);
      return { body, size: blob.size };
    },
  };
}
