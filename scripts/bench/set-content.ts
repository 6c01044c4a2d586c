/**
 * What an image set is made of on a registry: every manifest (index, manifest list, image
 * manifest) with its bytes, and every config and layer with its size and the repositories that
 * use it, read before any ceiling is timed. The ceilings move exactly this, with plain requests.
 */
import type http from 'node:http';
import { sha256Digest } from '../lib/digest.js';
import { MediaTypes } from '../lib/samples.js';
import { expectStatus, plainRequest } from './plain-http.js';

/** A config or layer, and every repository of the set that holds it (first: the first seen). */
export interface SetBlob {
  digest: string;
  size: number;
  repositories: string[];
}

/** A manifest, as the registry serves it; `tag` only on the images' own (top-level) ones. */
export interface SetManifest {
  repository: string;
  digest: string;
  mediaType: string;
  bytes: Buffer;
  tag?: string;
  /** 0 for a top-level manifest, 1 for a child of an index: children go up before their parents. */
  depth: number;
}

export interface SetContent {
  blobs: SetBlob[];
  manifests: SetManifest[];
  /** Bytes of every blob, each once. */
  blobBytes: number;
}

// All four, or Distribution down-converts Docker lists to schema1 and hides OCI indexes.
const ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest].join(
  ', ',
);
/** The manifest size registries must accept at least (OCI distribution spec); nothing here is larger. */
const MANIFEST_LIMIT = 4 * 1024 * 1024;
/** An index inside an index inside an index is as deep as any set here goes. */
const MAX_DEPTH = 2;

interface ManifestDoc {
  mediaType?: string;
  manifests?: Array<{ digest: string }>;
  config?: { digest: string; size: number };
  layers?: Array<{ digest: string; size: number }>;
}

const isSize = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
/** Digests end up in request paths: only the one form this bench's sets use. */
const isDigest = (d: unknown): d is string => typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d);

/** Every manifest and blob reachable from the images' tags, each manifest once per repository. */
export async function readSetContent(
  agent: http.Agent,
  host: string,
  images: Array<{ repository: string; tag: string }>,
): Promise<SetContent> {
  const blobs = new Map<string, SetBlob>();
  const manifests = new Map<string, SetManifest>();
  const walk = async (repository: string, selector: string, depth: number): Promise<void> => {
    const what = `reading ${repository}@${selector}`;
    const res = await plainRequest(
      agent,
      host,
      { method: 'GET', path: `/v2/${repository}/manifests/${selector}`, headers: { accept: ACCEPT } },
      { keepUpTo: MANIFEST_LIMIT },
    );
    expectStatus(res, [200], what);
    const digest = sha256Digest(res.body);
    if (manifests.has(`${repository}@${digest}`)) return;
    const doc = JSON.parse(res.body.toString('utf8')) as ManifestDoc;
    const mediaType = doc.mediaType ?? String(res.headers['content-type']);
    const tag = depth === 0 ? selector : undefined;
    manifests.set(`${repository}@${digest}`, {
      repository,
      digest,
      mediaType,
      bytes: res.body,
      depth,
      ...(tag ? { tag } : {}),
    });
    if (doc.manifests && depth >= MAX_DEPTH) throw new Error(`${what}: indexes nested deeper than ${MAX_DEPTH}`);
    for (const child of doc.manifests ?? []) {
      if (!isDigest(child.digest)) throw new Error(`${what}: a child with no valid digest`);
      await walk(repository, child.digest, depth + 1);
    }
    for (const d of [doc.config, ...(doc.layers ?? [])]) {
      if (!d) continue;
      if (!isDigest(d.digest) || !isSize(d.size)) throw new Error(`${what}: a blob with no valid digest or size`);
      const known = blobs.get(d.digest) ?? { digest: d.digest, size: d.size, repositories: [] };
      if (!known.repositories.includes(repository)) known.repositories.push(repository);
      blobs.set(d.digest, known);
    }
  };
  for (const img of images) await walk(img.repository, img.tag, 0);
  const all = [...blobs.values()];
  return { blobs: all, manifests: [...manifests.values()], blobBytes: all.reduce((s, b) => s + b.size, 0) };
}
