import { networkInterfaces } from 'node:os';
import { planMirrors } from '../mirror/plan.js';
import { talosPatch } from '../mirror/talos.js';
import type { RepositoryMapping } from '../reference/mapping.js';

/** Listening on every address: the nodes need one they can reach instead. */
const WILDCARD = /^(0\.0\.0\.0|::|\[::\]|)$/;

/**
 * The host nodes should use: the first `--advertise` name, else the listen
 * address, else this machine's first non-loopback IPv4 address.
 */
export function endpointHost(listenHost: string | undefined, advertise: string[]): string {
  if (advertise[0]) return advertise[0];
  if (listenHost && !WILDCARD.test(listenHost)) return listenHost;
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

export function endpointUrl(host: string, port: number, tls: boolean): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${tls ? 'https' : 'http'}://${h}:${port}`;
}

/** The Talos machine-config patch pointing every registry at this server. */
export function talosPatchFor(
  endpoint: string,
  registries: string[],
  mapping: RepositoryMapping,
  caPem: string | undefined,
): string {
  const plan = planMirrors({
    endpoint,
    registries,
    ...mapping,
    skipFallback: false,
    ...(caPem ? { caPem } : {}),
    insecureSkipVerify: false,
  });
  return talosPatch(plan);
}
