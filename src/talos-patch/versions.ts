import { atLeast, formatTalosVersion, parseTalosVersion, type TalosVersion } from '../mirror/talos-version.js';
import { UserInputError } from '../util/user-input.js';

/**
 * Where each air-gap setting lives, by Talos version, as the published
 * machine-config schemas have it. Talos refuses unknown keys, and the schemas
 * of 1.12 on no longer list the v1alpha1 fields their documents replace, so a
 * version gets exactly one place for each setting.
 */

/** The newest schema this tool writes for: the style used when no version is asked. */
export const NEWEST_TALOS: TalosVersion = { major: 1, minor: 14 };

/** `machine.features.imageCache` (and the IMAGECACHE volume) appeared in 1.9. */
export const IMAGE_CACHE_SINCE: TalosVersion = { major: 1, minor: 9 };
/** `machine.network.searchDomains` appeared in 1.9 (1.8 has only `disableSearchDomain`). */
export const SEARCH_DOMAINS_SINCE: TalosVersion = { major: 1, minor: 9 };
/** TimeSyncConfig, ResolverConfig and the registry documents replace their v1alpha1 fields in 1.12. */
export const NETWORK_DOCUMENTS_SINCE: TalosVersion = { major: 1, minor: 12 };
/** ImageCacheConfig and DiscoveryServiceConfig replace `machine.features.imageCache` and `cluster.discovery`. */
export const CLUSTER_DOCUMENTS_SINCE: TalosVersion = { major: 1, minor: 14 };
/** TimeSyncConfig's `ntp.useNTS`: NTS needs TLS to the time server, which a server inside a gap rarely offers. */
export const NTS_SINCE: TalosVersion = { major: 1, minor: 14 };

/** The places one version keeps the settings in. */
export interface TalosStyle {
  version: TalosVersion;
  /** Registries, time and nameservers as documents (else v1alpha1 `machine.*`). */
  networkDocuments: boolean;
  /** Image cache and discovery service as documents (else v1alpha1 fields). */
  clusterDocuments: boolean;
  /** Whether the version has an image cache at all. */
  imageCache: boolean;
  /** Whether search domains can be set. */
  searchDomains: boolean;
  /** Whether TimeSyncConfig has `ntp.useNTS` (which must then be off for a plain NTP server). */
  ntsField: boolean;
}

export function styleFor(version: TalosVersion): TalosStyle {
  return {
    version,
    networkDocuments: atLeast(version, NETWORK_DOCUMENTS_SINCE),
    clusterDocuments: atLeast(version, CLUSTER_DOCUMENTS_SINCE),
    imageCache: atLeast(version, IMAGE_CACHE_SINCE),
    searchDomains: atLeast(version, SEARCH_DOMAINS_SINCE),
    ntsField: atLeast(version, NTS_SINCE),
  };
}

/** The asked version, or the newest with the note that says so. */
export function versionOrNewest(text: string | undefined): { version: TalosVersion; note?: string } {
  if (text !== undefined) return { version: parseTalosVersion(text) };
  return {
    version: NEWEST_TALOS,
    note: `no --talos-version: written for Talos ${formatTalosVersion(NEWEST_TALOS)} and later; pass --talos-version for older nodes`,
  };
}

/** A setting the asked version cannot take: one line naming the version that brought it. */
export function refuseBefore(flag: string, since: TalosVersion, asked: TalosVersion): never {
  throw new UserInputError(
    `${flag} needs Talos ${formatTalosVersion(since)} or later (${formatTalosVersion(asked)} asked has no field for it)`,
  );
}
