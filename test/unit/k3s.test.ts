// k3s and RKE2 registries.yaml, per repository mapping: field names and shapes exactly as the k3s
// private-registry documentation gives them (mirrors.<host>.endpoint as a list, rewrite as a map of
// regular expressions, configs.<endpoint host>.auth.username/password, tls.ca_file and
// insecure_skip_verify), written here from that documentation rather than from the code under test.
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { K3S_CA_PATH, k3sRegistries } from '../../src/mirror/k3s.js';
import { planMirrors, type MirrorOptions } from '../../src/mirror/plan.js';

const base: MirrorOptions = {
  endpoint: 'http://10.5.0.1:6000',
  registries: ['ghcr.io', 'registry.k8s.io:443'],
  keepRegistryHost: false,
  skipFallback: true,
  insecureSkipVerify: false,
};
const load = (o: MirrorOptions) => yaml.load(k3sRegistries(planMirrors(o)));

describe('k3s registries.yaml', () => {
  it("host stripped: one '*' mirror, no rewrite", () => {
    expect(load(base)).toEqual({ mirrors: { '*': { endpoint: ['http://10.5.0.1:6000'] } } });
  });

  it('--keep-registry-host: one mirror per registry, rewritten under the host folder (":" as "_")', () => {
    expect(load({ ...base, keepRegistryHost: true })).toEqual({
      mirrors: {
        'ghcr.io': { endpoint: ['http://10.5.0.1:6000'], rewrite: { '^(.*)$': 'ghcr.io/$1' } },
        'registry.k8s.io:443': { endpoint: ['http://10.5.0.1:6000'], rewrite: { '^(.*)$': 'registry.k8s.io_443/$1' } },
      },
    });
  });

  it('--repo-prefix: everything rewritten under the prefix', () => {
    expect(load({ ...base, repoPrefix: 'airgap' })).toEqual({
      mirrors: { '*': { endpoint: ['http://10.5.0.1:6000'], rewrite: { '^(.*)$': 'airgap/$1' } } },
    });
  });

  it('TLS and credentials under configs.<endpoint host>', () => {
    const doc = load({
      ...base,
      endpoint: 'https://registry.lan:5000',
      caPem: '-----BEGIN CERTIFICATE-----\n',
      insecureSkipVerify: true,
      auth: { username: 'u', password: 'p' },
    });
    expect(doc).toEqual({
      mirrors: { '*': { endpoint: ['https://registry.lan:5000'] } },
      configs: {
        'registry.lan:5000': {
          auth: { username: 'u', password: 'p' },
          tls: { ca_file: K3S_CA_PATH, insecure_skip_verify: true },
        },
      },
    });
  });

  it('says how to stop the fallback to upstream registries, which registries.yaml cannot', () => {
    expect(k3sRegistries(planMirrors(base))).toMatch(/--disable-default-registry-endpoint/);
  });
});
