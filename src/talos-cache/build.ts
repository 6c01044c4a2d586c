import { checkSignatures, failsPolicy, type SignatureOptions } from '../signatures/check-images.js';
import type { CountersignKey } from '../signatures/countersign.js';
import { SignaturePolicyRefusal } from '../signatures/errors.js';
import { cacheCountersign, cacheSignatureSource } from './signatures.js';
import type { Platform } from '../oci/descriptor.js';
import { formatPlatform } from '../oci/platform.js';
import type { EntryStamp } from '../tar/entries.js';
import { writeOciLayout, type OciResult } from './oci-wrap.js';
import { layerSize } from './layer-tar.js';
import { checkOutput, ensureSpace, pendingOutput } from './output.js';
import { planCache, type CacheCountersign, type CachedImage, type CachePlan, type PlatformChoice } from './plan.js';
import { openBundles, type BundleSource } from './source.js';
import { writeTree } from './tree-writer.js';

/**
 * `talos-cache`: a Talos image cache built offline from a bundle. The phases:
 * check the output name, open the bundles (structure checked, manifests
 * hashed), plan the tree for the platforms asked, make sure every blob is
 * there and the disk can hold it, then write under a temporary name, every
 * byte hashed as it is copied, and rename.
 */

export type CacheLayout = 'oci' | 'flat';

export interface TalosCacheRequest {
  bundles: string[];
  output: string;
  layout: CacheLayout;
  platforms: PlatformChoice;
  /** From SOURCE_DATE_EPOCH: every time stamp in the layer and the image's creation time. */
  sourceDateEpoch?: number;
  /** Every image must satisfy this policy (the build is refused otherwise, exit 5). */
  signatures?: SignatureOptions;
  /** With `signatures`: the cluster's signature beside every verified image, in the cache. */
  countersignKey?: CountersignKey;
}

export interface TalosCacheHooks {
  /** Called once the total is known, before the first byte is written. */
  onStart?: (bytes: number) => void;
  onBytes?: (n: number) => void;
}

export interface TalosCacheResult {
  output: string;
  layout: CacheLayout;
  platforms: string[];
  images: CachedImage[];
  files: number;
  blobs: number;
  /** Bytes of the tree's files. */
  bytes: number;
  /** Bytes of the bundles read. */
  bundleBytes: number;
  /** The `oci` layout's one image. */
  image?: { platform: string; manifest: OciResult['manifest']; layer: OciResult['layer'] };
}

/** The platform the `oci` wrapping declares: the first one asked, or linux/amd64 for `all` (as Talos does). */
function wrappingPlatform(choice: PlatformChoice): Platform {
  return choice === 'all' ? { os: 'linux', architecture: 'amd64' } : choice[0]!;
}

export async function buildTalosCache(req: TalosCacheRequest, hooks: TalosCacheHooks = {}): Promise<TalosCacheResult> {
  await checkOutput(req.output);
  const source = await openBundles(req.bundles);
  const plan = planCache(source.metadata, source.manifest, req.platforms, await countersignFor(req, source));
  source.requireBlobs(plan.files.flatMap((f) => ('blob' in f ? [{ digest: f.blob, size: f.size }] : [])));
  const stamp: EntryStamp = { mtime: new Date((req.sourceDateEpoch ?? 0) * 1000) };
  const total = req.layout === 'oci' ? layerSize(plan, stamp) : plan.bytes;
  await ensureSpace(req.output, total, plan.files.length + plan.directories.length);
  hooks.onStart?.(total);
  const pending = await pendingOutput(req.output);
  let image: TalosCacheResult['image'];
  try {
    image = await write(pending.temp, req, plan, source, stamp, hooks.onBytes ?? (() => {}));
    await pending.publish();
  } catch (err) {
    await pending.discard();
    throw err;
  }
  return {
    output: req.output,
    layout: req.layout,
    platforms: req.platforms === 'all' ? ['all'] : req.platforms.map(formatPlatform),
    images: plan.images,
    files: plan.files.length,
    blobs: plan.files.filter((f) => 'blob' in f).length,
    bytes: plan.bytes,
    bundleBytes: source.bytes,
    ...(image ? { image } : {}),
  };
}

/** With a policy: every image checked (a failure refuses the cache), and the countersigner for the verified ones. */
async function countersignFor(req: TalosCacheRequest, source: BundleSource): Promise<CacheCountersign | undefined> {
  if (!req.signatures) return undefined;
  const results = await checkSignatures(
    source.metadata.images,
    cacheSignatureSource(source, source.metadata),
    req.signatures,
  );
  const failed = results.filter(failsPolicy);
  if (failed.length > 0) throw new SignaturePolicyRefusal(failed, results.length, 'no image cache was written');
  if (!req.countersignKey) return undefined;
  const verified = new Set(results.filter((r) => r.status === 'verified').map((r) => r.reference));
  return cacheCountersign(req.countersignKey, verified);
}

async function write(
  root: string,
  req: TalosCacheRequest,
  plan: CachePlan,
  source: BundleSource,
  stamp: EntryStamp,
  onBytes: (n: number) => void,
): Promise<TalosCacheResult['image']> {
  if (req.layout === 'flat') {
    await writeTree(root, plan, source, onBytes);
    return undefined;
  }
  const platform = wrappingPlatform(req.platforms);
  const oci = await writeOciLayout(root, plan, source, platform, stamp, onBytes);
  return { platform: formatPlatform(platform), ...oci };
}
