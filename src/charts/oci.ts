import { InvalidDocumentError } from '../oci/descriptor.js';
import type { BuiltArtifact, BuiltBlob } from '../oci/artifact.js';
import { parseManifest } from '../oci/manifest.js';
import { isImageManifestType } from '../oci/media-types.js';
import { RegistryError } from '../registry/errors.js';
import type { Repository } from '../registry/repository.js';
import { printable } from '../util/text.js';
import { ARCHIVE_BOUNDS } from './archive.js';
import type { ChartContext } from './context.js';
import { sha256Of } from './download.js';
import { ChartError, ChartRequestError } from './errors.js';
import { HelmMediaType } from './helm-artifact.js';
import { MAX_PROVENANCE_BYTES } from './repository.js';
import { isExactVersion, pickVersion, tagOfVersion, versionOfTag } from './versions.js';

/** Helm's config is Chart.yaml as JSON: a few KiB. */
const MAX_CONFIG_BYTES = 1 << 20;
/** Tags one chart repository may list: one per version. */
const MAX_TAGS = 50_000;

/** A chart from an OCI registry: its manifest and blobs exactly as the registry holds them. */
export interface FetchedOciChart {
  version: string;
  tag: string;
  /** The upstream manifest's bytes: the carried chart keeps its digest. */
  manifest: Buffer;
  digest: string;
  blobs: BuiltBlob[];
  /** The chart layer's bytes (the .tgz). */
  tgz: Buffer;
}

/**
 * The tag Helm would pull for `wanted` (an exact version as its tag, a range
 * against the tag list read with `_` as `+`), then the manifest, checked to be
 * a Helm chart (Helm's config type, one chart layer, at most one provenance
 * layer), and its blobs, each checked against its digest and bounded.
 */
export async function fetchOciChart(
  ctx: ChartContext,
  registry: string,
  repository: string,
  wanted: string | undefined,
  what: string,
): Promise<FetchedOciChart> {
  const repo = ctx.registry.repository(registry, repository);
  const version = wanted !== undefined && isExactVersion(wanted) ? wanted : await versionFromTags(repo, wanted, what);
  const tag = tagOfVersion(version);
  const fetched = await repo.getManifest(tag);
  const where = `${what}: ${printable(version, 60)}`;
  let parsed;
  try {
    parsed = parseManifest(fetched.bytes, fetched.mediaType, where);
  } catch (err) {
    throw new ChartError(err instanceof InvalidDocumentError ? err.message : `${where}: ${(err as Error).message}`);
  }
  if (
    parsed.kind !== 'image' ||
    !isImageManifestType(parsed.mediaType) ||
    parsed.config.mediaType !== HelmMediaType.config
  )
    throw new ChartError(`${where}: not a Helm chart (its manifest's config is not ${HelmMediaType.config})`);
  const charts = parsed.layers.filter(
    (l) => l.mediaType === HelmMediaType.chart || l.mediaType === HelmMediaType.legacyChart,
  );
  const provs = parsed.layers.filter((l) => l.mediaType === HelmMediaType.provenance);
  if (charts.length !== 1 || provs.length > 1 || charts.length + provs.length !== parsed.layers.length)
    throw new ChartError(
      `${where}: a Helm chart has one chart layer and at most one provenance layer; this one has other layers`,
    );
  const blobs: BuiltBlob[] = [];
  const read = async (
    d: { digest: string; size: number; mediaType: string },
    role: BuiltBlob['role'],
    limit: number,
  ) => {
    if (d.size > limit)
      throw new ChartError(`${where}: a ${d.mediaType} blob of ${d.size} bytes, more than the ${limit} allowed`);
    const bytes = await readBlob(repo, d.digest, d.size, where);
    blobs.push({ digest: d.digest, size: d.size, mediaType: d.mediaType, role, content: { bytes } });
    return bytes;
  };
  await read(parsed.config, 'config', MAX_CONFIG_BYTES);
  const tgz = await read(charts[0]!, 'layer', ARCHIVE_BOUNDS.compressedBytes);
  if (provs[0]) await read(provs[0], 'layer', MAX_PROVENANCE_BYTES);
  // Layers in manifest order, as the artifact lists them.
  const order = [parsed.config.digest, ...parsed.layers.map((l) => l.digest)];
  blobs.sort((a, b) => order.indexOf(a.digest) - order.indexOf(b.digest));
  return { version, tag, manifest: fetched.bytes, digest: fetched.digest, blobs, tgz };
}

async function versionFromTags(repo: Repository, wanted: string | undefined, what: string): Promise<string> {
  let tags: string[];
  try {
    ({ tags } = await repo.listTags(undefined, MAX_TAGS));
  } catch (err) {
    if (err instanceof RegistryError && err.kind === 'not-found')
      throw new ChartRequestError(`${what}: the registry has no such chart repository; check the oci:// path`);
    throw err;
  }
  const versions = tags.map(versionOfTag);
  const version = pickVersion(versions, wanted);
  if (version === undefined)
    throw new ChartRequestError(
      `${what}: no tag matches "${printable(wanted ?? '(latest stable)', 80)}" among ${tags.length} tags; give a version the registry has`,
    );
  return version;
}

/** A blob, streamed into memory up to its descriptor's size, its digest checked; retried as a whole. */
async function readBlob(repo: Repository, digest: string, size: number, where: string): Promise<Buffer> {
  return repo.retrying(`blob ${digest} of ${repo}`, async () => {
    const { body } = await repo.openBlob(digest);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body) {
      total += (chunk as Buffer).length;
      if (total > size) {
        body.destroy();
        throw new ChartError(`${where}: blob ${digest} is longer than its descriptor's ${size} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks, total);
    if (bytes.length !== size || sha256Of(bytes) !== digest)
      throw new RegistryError('digest', `${where}: blob ${digest} arrived with other content (${sha256Of(bytes)})`, {
        retryable: true,
      });
    return bytes;
  });
}

/** The carried artifact of an OCI chart: the upstream manifest and blobs, byte for byte. */
export function ociChartArtifact(
  fetched: FetchedOciChart,
  repository: string,
  carried: BuiltArtifact['carried'],
): BuiltArtifact {
  return { repository, tag: fetched.tag, carried, manifest: fetched.manifest, blobs: fetched.blobs };
}
