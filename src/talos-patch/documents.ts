import type { MirrorPlan } from '../mirror/plan.js';
import { talosRegistries, talosRegistryDocuments } from '../mirror/talos.js';
import { formatTalosVersion, talosFieldsFor } from '../mirror/talos-version.js';
import type { AirgapSettings, DiscoverySetting } from './settings.js';
import {
  CLUSTER_DOCUMENTS_SINCE,
  IMAGE_CACHE_SINCE,
  SEARCH_DOMAINS_SINCE,
  refuseBefore,
  type TalosStyle,
} from './versions.js';

/**
 * One Talos config patch: the v1alpha1 part (a strategic merge of `machine`
 * and `cluster`) and the documents of the newer config kinds. Talos takes both
 * in one `--config-patch` file, the documents after the v1alpha1 part.
 */
export interface TalosPatch {
  v1alpha1: Record<string, Record<string, unknown>>;
  documents: Array<Record<string, unknown>>;
  /** What the user should know about the patch (a setting left to the default, a deprecation). */
  notes: string[];
}

/** The name of the discovery service document this tool writes. */
export const DISCOVERY_DOCUMENT_NAME = 'airgap';
/** The disk Talos installs on: where the IMAGECACHE volume is made. */
const SYSTEM_DISK = 'system_disk';

/** Every setting asked for, in the fields and documents of the style's version. */
export function buildPatch(plan: MirrorPlan, settings: AirgapSettings, style: TalosStyle): TalosPatch {
  refuseWhatTheVersionLacks(settings, style);
  const patch: TalosPatch = { v1alpha1: {}, documents: [], notes: [] };
  addRegistries(patch, plan, style);
  addTime(patch, settings.timeServers, style);
  addResolver(patch, settings, style);
  addDiscovery(patch, settings.discovery, style);
  addImageCache(patch, settings, style);
  return patch;
}

function refuseWhatTheVersionLacks(settings: AirgapSettings, style: TalosStyle): void {
  if (settings.imageCache && !style.imageCache) refuseBefore('--image-cache', IMAGE_CACHE_SINCE, style.version);
  if (settings.searchDomains.length > 0 && !style.searchDomains)
    refuseBefore('--search-domain', SEARCH_DOMAINS_SINCE, style.version);
}

/** `machine.<section>` of the v1alpha1 part, made on first use. */
function machine(patch: TalosPatch, section: string): Record<string, unknown> {
  const m = (patch.v1alpha1.machine ??= {});
  return ((m[section] as Record<string, unknown> | undefined) ??= {}) as Record<string, unknown>;
}

const document = (kind: string, fields: Record<string, unknown>) => ({ apiVersion: 'v1alpha1', kind, ...fields });

/** The mirrors exactly as mirror-config writes them for the version (skipFallback only where it exists). */
function addRegistries(patch: TalosPatch, plan: MirrorPlan, style: TalosStyle): void {
  const format = style.networkDocuments ? 'talos-multidoc' : 'talos';
  const fields = talosFieldsFor(format, style.version, plan.options.skipFallback);
  patch.notes.push(...fields.warnings);
  const forVersion = { ...plan, options: { ...plan.options, skipFallback: fields.skipFallback } };
  if (style.networkDocuments)
    patch.documents.push(...(talosRegistryDocuments(forVersion) as Array<Record<string, unknown>>));
  else (patch.v1alpha1.machine ??= {}).registries = talosRegistries(forVersion);
}

function addTime(patch: TalosPatch, servers: string[], style: TalosStyle): void {
  if (servers.length === 0) return;
  if (!style.networkDocuments) {
    machine(patch, 'time').servers = servers;
    return;
  }
  const ntp = { servers, ...(style.ntsField ? { useNTS: false } : {}) };
  patch.documents.push(document('TimeSyncConfig', { ntp }));
}

function addResolver(patch: TalosPatch, settings: AirgapSettings, style: TalosStyle): void {
  const { nameservers, searchDomains } = settings;
  if (nameservers.length === 0 && searchDomains.length === 0) return;
  if (!style.networkDocuments) {
    const network = machine(patch, 'network');
    if (nameservers.length > 0) network.nameservers = nameservers;
    if (searchDomains.length > 0) network.searchDomains = searchDomains;
    return;
  }
  patch.documents.push(
    document('ResolverConfig', {
      ...(nameservers.length > 0 ? { nameservers: nameservers.map((address) => ({ address })) } : {}),
      ...(searchDomains.length > 0 ? { searchDomains: { domains: searchDomains } } : {}),
    }),
  );
}

/**
 * The discovery service registry off, or pointed at a service inside the gap.
 * Before the DiscoveryServiceConfig document, `cluster.discovery` holds both;
 * with it, discovery runs only when such a document exists.
 */
function addDiscovery(patch: TalosPatch, discovery: DiscoverySetting, style: TalosStyle): void {
  if (discovery.kind === 'default') return;
  if (style.clusterDocuments) {
    if (discovery.kind === 'endpoint')
      patch.documents.push(
        document('DiscoveryServiceConfig', { name: DISCOVERY_DOCUMENT_NAME, endpoint: discovery.url }),
      );
    else
      patch.notes.push(
        `Talos from ${formatTalosVersion(CLUSTER_DOCUMENTS_SINCE)} has no switch for discovery in its config: it runs only for a DiscoveryServiceConfig document, so the patch adds none; generate the config without one (talosctl gen config --with-cluster-discovery=false)`,
      );
    return;
  }
  patch.v1alpha1.cluster ??= {};
  patch.v1alpha1.cluster.discovery =
    discovery.kind === 'off'
      ? { enabled: false }
      : { enabled: true, registries: { service: { endpoint: discovery.url } } };
}

/**
 * What a node needs to use a cache built by talos-cache: the feature switched
 * on and, for a cache that comes on an ISO, a disk volume large enough to copy
 * it into (Talos's default IMAGECACHE volume is 1 GB).
 */
function addImageCache(patch: TalosPatch, settings: AirgapSettings, style: TalosStyle): void {
  const cache = settings.imageCache;
  if (!cache) return;
  if (style.clusterDocuments) patch.documents.push(document('ImageCacheConfig', { local: { enabled: true } }));
  else machine(patch, 'features').imageCache = { localEnabled: true };
  if (cache.volumeSize === undefined) return;
  patch.documents.push(
    document('VolumeConfig', {
      name: 'IMAGECACHE',
      provisioning: { diskSelector: { match: SYSTEM_DISK }, minSize: cache.volumeSize, maxSize: cache.volumeSize },
    }),
  );
}
