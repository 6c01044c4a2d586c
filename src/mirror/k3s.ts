import yaml from 'js-yaml';
import { mirrorPath } from '../reference/mapping.js';
import type { MirrorPlan } from './plan.js';

/** Where the CA is expected on each node; written in the file so the step is explicit. */
export const K3S_CA_PATH = '/etc/rancher/k3s/airgap-registry-ca.crt';

/**
 * `registries.yaml` for k3s and RKE2 (`/etc/rancher/k3s/registries.yaml`,
 * `/etc/rancher/rke2/registries.yaml`). Per-registry layouts use k3s `rewrite`
 * rules on the plain endpoint instead of a path, which is how k3s maps
 * repositories. k3s has no per-mirror skipFallback; its server flag
 * `--disable-default-registry-endpoint` does that, noted in the header.
 */
export function k3sRegistries(plan: MirrorPlan): string {
  const { options: o } = plan;
  const base = o.endpoint.replace(/\/+$/, '');
  // Built with fromEntries: a key is always an own property, whatever its text (`__proto__` included).
  const mirrors = Object.fromEntries(
    plan.entries.map((e) => {
      const target = mirrorPath(e.registry, o);
      return [e.registry, { endpoint: [base], ...(target ? { rewrite: { '^(.*)$': `${target}/$1` } } : {}) }];
    }),
  );
  const settings =
    o.auth || o.caPem || o.insecureSkipVerify
      ? {
          ...(o.auth ? { auth: { username: o.auth.username, password: o.auth.password } } : {}),
          ...(o.caPem || o.insecureSkipVerify
            ? {
                tls: {
                  ...(o.caPem ? { ca_file: K3S_CA_PATH } : {}),
                  ...(o.insecureSkipVerify ? { insecure_skip_verify: true } : {}),
                },
              }
            : {}),
        }
      : undefined;
  const configs = settings ? Object.fromEntries([[plan.endpointHost, settings]]) : undefined;
  // The header holds the tool's own text only; every other string goes through the serialiser.
  const header = [
    '# /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml) on every node',
    ...(o.caPem ? [`# copy the registry CA to ${K3S_CA_PATH} on every node`] : []),
    ...(o.skipFallback
      ? ['# to never fall back to upstream registries, start k3s with --disable-default-registry-endpoint']
      : []),
  ];
  return `${header.join('\n')}\n${yaml.dump({ mirrors, ...(configs ? { configs } : {}) }, { lineWidth: 200, quotingType: '"', noRefs: true })}`;
}
