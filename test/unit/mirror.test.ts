import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { containerdHosts } from '../../src/mirror/containerd.js';
import { k3sRegistries } from '../../src/mirror/k3s.js';
import { checkMirrorOptions, planMirrors, type MirrorOptions } from '../../src/mirror/plan.js';
import { talosMultiDoc, talosPatch } from '../../src/mirror/talos.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const base: MirrorOptions = {
  endpoint: 'http://10.5.0.1:6000',
  registries: ['ghcr.io', 'registry.k8s.io'],
  keepRegistryHost: false,
  skipFallback: true,
  insecureSkipVerify: false,
};

/** Every key of `obj` is one the format documents. */
function onlyKeys(obj: Record<string, unknown>, allowed: string[], where: string): void {
  for (const k of Object.keys(obj)) expect(allowed, `${where}: unexpected field "${k}"`).toContain(k);
}

// Field names as documented: Talos v1alpha1 machine.registries and the RegistryMirrorConfig /
// RegistryAuthConfig / RegistryTLSConfig documents; containerd docs/hosts.md; k3s private-registry docs.
const TALOS_MIRROR = ['endpoints', 'overridePath', 'skipFallback'];
const TALOS_CONFIG = ['auth', 'tls'];
const TALOS_AUTH = ['username', 'password', 'auth', 'identityToken'];
const TALOS_TLS = ['insecureSkipVerify', 'ca', 'clientIdentity'];

describe('Talos machine-config patch', () => {
  it("one '*' mirror when hosts are stripped", () => {
    const doc = yaml.load(talosPatch(planMirrors(base))) as {
      machine: { registries: { mirrors: Record<string, Record<string, unknown>> } };
    };
    const mirrors = doc.machine.registries.mirrors;
    expect(Object.keys(mirrors)).toEqual(['*']);
    onlyKeys(mirrors['*']!, TALOS_MIRROR, "mirrors['*']");
    expect(mirrors['*']).toEqual({ endpoints: ['http://10.5.0.1:6000'], skipFallback: true });
  });

  it('per-registry mirrors with overridePath, auth and TLS keyed by the endpoint host', () => {
    const plan = planMirrors({
      ...base,
      endpoint: 'https://registry.lan:5000',
      keepRegistryHost: true,
      registries: ['ghcr.io', '127.0.0.1:5001'],
      caPem: PEM,
      auth: { username: 'u', password: 'p' },
    });
    const doc = yaml.load(talosPatch(plan)) as {
      machine: {
        registries: {
          mirrors: Record<string, Record<string, unknown>>;
          config: Record<string, Record<string, Record<string, unknown>>>;
        };
      };
    };
    const { mirrors, config } = doc.machine.registries;
    expect(mirrors['ghcr.io']).toEqual({
      endpoints: ['https://registry.lan:5000/v2/ghcr.io'],
      overridePath: true,
      skipFallback: true,
    });
    expect(mirrors['127.0.0.1:5001']!.endpoints).toEqual(['https://registry.lan:5000/v2/127.0.0.1_5001']);
    for (const m of Object.values(mirrors)) onlyKeys(m, TALOS_MIRROR, 'mirror');
    const cfg = config['registry.lan:5000']!;
    onlyKeys(cfg, TALOS_CONFIG, 'config');
    onlyKeys(cfg.auth!, TALOS_AUTH, 'auth');
    onlyKeys(cfg.tls!, TALOS_TLS, 'tls');
    expect(Buffer.from(cfg.tls!.ca as string, 'base64').toString()).toBe(PEM);
  });

  it('multi-document style with the documented kinds and fields', () => {
    const plan = planMirrors({
      ...base,
      endpoint: 'https://registry.lan',
      caPem: PEM,
      insecureSkipVerify: false,
      auth: { username: 'u', password: 'p' },
    });
    const docs = yaml.loadAll(talosMultiDoc(plan)) as Array<Record<string, unknown>>;
    expect(docs.map((d) => d.kind)).toEqual(['RegistryMirrorConfig', 'RegistryAuthConfig', 'RegistryTLSConfig']);
    for (const d of docs) expect(d.apiVersion).toBe('v1alpha1');
    onlyKeys(docs[0]!, ['apiVersion', 'kind', 'name', 'endpoints', 'skipFallback'], 'RegistryMirrorConfig');
    expect(docs[0]!.name).toBe('*');
    for (const e of docs[0]!.endpoints as Array<Record<string, unknown>>)
      onlyKeys(e, ['url', 'overridePath'], 'endpoints[]');
    onlyKeys(
      docs[1]!,
      ['apiVersion', 'kind', 'name', 'username', 'password', 'auth', 'identityToken'],
      'RegistryAuthConfig',
    );
    onlyKeys(
      docs[2]!,
      ['apiVersion', 'kind', 'name', 'ca', 'insecureSkipVerify', 'clientIdentity'],
      'RegistryTLSConfig',
    );
    expect(docs[1]!.name).toBe('registry.lan');
    expect(docs[2]!.ca).toBe(PEM);
  });
});

describe('containerd hosts.toml', () => {
  it("uses _default for '*' and the registry as server when fallback is skipped", () => {
    const [h] = containerdHosts(planMirrors(base));
    expect(h!.namespace).toBe('_default');
    expect(h!.files['hosts.toml']).toContain('server = "http://10.5.0.1:6000"');
    expect(h!.files['hosts.toml']).toContain('capabilities = ["pull", "resolve"]');
  });
  it('per registry: a [host] table with override_path, upstream as server, CA beside it', () => {
    const hosts = containerdHosts(
      planMirrors({ ...base, endpoint: 'https://r.lan', keepRegistryHost: true, skipFallback: false, caPem: PEM }),
    );
    const ghcr = hosts.find((h) => h.namespace === 'ghcr.io')!;
    const toml = ghcr.files['hosts.toml']!;
    expect(toml).toContain('server = "https://ghcr.io"');
    expect(toml).toContain('[host."https://r.lan/v2/ghcr.io"]');
    expect(toml).toContain('override_path = true');
    expect(toml).toContain('ca = "ca.crt"');
    expect(ghcr.files['ca.crt']).toBe(PEM);
    for (const line of toml.split('\n').filter((l) => /^\s*[a-z_]+\s*=/.test(l))) {
      expect(['server', 'capabilities', 'ca', 'skip_verify', 'override_path']).toContain(line.trim().split(/\s*=/)[0]);
    }
  });
});

describe('k3s registries.yaml', () => {
  it('mirrors with endpoint lists and configs keyed by endpoint host', () => {
    const doc = yaml.load(
      k3sRegistries(
        planMirrors({
          ...base,
          endpoint: 'https://r.lan:5000',
          insecureSkipVerify: true,
          auth: { username: 'u', password: 'p' },
        }),
      ),
    ) as {
      mirrors: Record<string, Record<string, unknown>>;
      configs: Record<string, { auth: Record<string, unknown>; tls: Record<string, unknown> }>;
    };
    expect(doc.mirrors['*']).toEqual({ endpoint: ['https://r.lan:5000'] });
    onlyKeys(doc.configs['r.lan:5000']!, ['auth', 'tls'], 'configs');
    onlyKeys(doc.configs['r.lan:5000']!.tls, ['cert_file', 'key_file', 'ca_file', 'insecure_skip_verify'], 'tls');
    onlyKeys(doc.configs['r.lan:5000']!.auth, ['username', 'password', 'auth', 'identity_token'], 'auth');
  });
  it('rewrites repositories for per-registry layouts', () => {
    const doc = yaml.load(k3sRegistries(planMirrors({ ...base, keepRegistryHost: true, repoPrefix: 'airgap' }))) as {
      mirrors: Record<string, { endpoint: string[]; rewrite: Record<string, string> }>;
    };
    expect(doc.mirrors['ghcr.io']).toEqual({
      endpoint: ['http://10.5.0.1:6000'],
      rewrite: { '^(.*)$': 'airgap/ghcr.io/$1' },
    });
  });
});

describe('mirror checks', () => {
  it('refuses an endpoint without scheme', () => {
    expect(checkMirrorOptions({ ...base, endpoint: '10.5.0.1:6000' }, []).errors.join()).toMatch(/no scheme/);
  });
  it('warns about loopback endpoints', () => {
    expect(checkMirrorOptions({ ...base, endpoint: 'http://127.0.0.1:5000' }, []).warnings.join()).toMatch(
      /node itself/,
    );
  });
  it('refuses TLS options on an http endpoint', () => {
    expect(checkMirrorOptions({ ...base, caPem: PEM }, []).errors.join()).toMatch(/non-HTTPS/);
    expect(checkMirrorOptions({ ...base, insecureSkipVerify: true }, []).errors.join()).toMatch(/http:\/\//);
  });
  it("refuses one '*' mirror when two registries share a repository path", () => {
    const repos = [
      { registry: 'docker.io', repository: 'foo/bar' },
      { registry: 'ghcr.io', repository: 'foo/bar' },
    ];
    expect(checkMirrorOptions(base, repos).errors.join()).toMatch(/--keep-registry-host/);
    expect(checkMirrorOptions({ ...base, keepRegistryHost: true }, repos).errors).toEqual([]);
  });
});
