import { isIP } from 'node:net';
import { printable } from '../util/text.js';
import { UsageError } from '../commands/errors.js';

/**
 * The air-gap settings besides the mirrors, checked as the user gave them.
 * Each is what a node in a gap would otherwise reach the internet for:
 * time.cloudflare.com, 1.1.1.1 and 8.8.8.8, discovery.talos.dev.
 */
export interface AirgapSettings {
  timeServers: string[];
  nameservers: string[];
  searchDomains: string[];
  discovery: DiscoverySetting;
  imageCache: ImageCacheSetting | undefined;
}

/** Keep Talos's default, turn the service registry off, or point it at a service inside the gap. */
export type DiscoverySetting = { kind: 'default' } | { kind: 'off' } | { kind: 'endpoint'; url: string };

export interface ImageCacheSetting {
  /** Size of the IMAGECACHE volume to copy an ISO's cache into; undefined leaves Talos's default. */
  volumeSize?: string;
}

// RFC 1123 labels: letters, digits, inner hyphens; a name of at most 253 characters.
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

export function isHostName(s: string): boolean {
  return s.length <= 253 && s.split('.').every((label) => LABEL.test(label));
}

/** A time server: an IP address or a host name (NTP), as `machine.time.servers` and TimeSyncConfig take it. */
export function checkTimeServer(value: string): string {
  if (isIP(value) !== 0 || isHostName(value)) return value;
  throw new UsageError(`--time-server "${printable(value)}" is not an IP address or host name`);
}

/** A nameserver: Talos takes addresses only (a name would need the resolver it configures). */
export function checkNameserver(value: string): string {
  if (isIP(value) !== 0) return value;
  throw new UsageError(`--nameserver "${printable(value)}" is not an IP address (a resolver is named by its address)`);
}

export function checkSearchDomain(value: string): string {
  if (isHostName(value)) return value;
  throw new UsageError(`--search-domain "${printable(value)}" is not a domain name`);
}

/** `--discovery off` and `--discovery-endpoint URL` are one choice; the URL needs its scheme. */
export function discoveryFrom(off: string | undefined, endpoint: string | undefined): DiscoverySetting {
  if (off !== undefined && off !== 'off')
    throw new UsageError(`--discovery takes only "off" (got "${printable(off)}"); use --discovery-endpoint URL`);
  if (off !== undefined && endpoint !== undefined)
    throw new UsageError('--discovery off and --discovery-endpoint contradict each other: give one');
  if (off !== undefined) return { kind: 'off' };
  if (endpoint === undefined) return { kind: 'default' };
  if (!/^https?:\/\/[^\s/]+/i.test(endpoint) || /[\s\u0000-\u001f\u007f]/.test(endpoint))
    throw new UsageError(
      `--discovery-endpoint "${printable(endpoint)}" needs a scheme and a host: https://discovery.lan:3000`,
    );
  try {
    new URL(endpoint);
  } catch {
    throw new UsageError(`--discovery-endpoint "${printable(endpoint)}" is not a URL`);
  }
  return { kind: 'endpoint', url: endpoint };
}

// Sizes as Talos's volume config takes them: bytes, or a number with a unit (2GB, 1.5GiB).
const SIZE = /^\d+(\.\d+)?\s?([kKMGTP]i?B|B)?$/;

export function checkVolumeSize(value: string): string {
  if (SIZE.test(value)) return value;
  throw new UsageError(`--image-cache-size "${printable(value)}" is not a size (2GB, 1.5GiB)`);
}
