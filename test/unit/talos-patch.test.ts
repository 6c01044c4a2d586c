// The whole air-gap patch, for each Talos version the project checks: every document and key it
// writes is held against that version's published machine-config schema (test/fixtures/talos-schemas),
// each setting lands in the place that version keeps it, and what a version lacks is refused.
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { planMirrors, type MirrorOptions } from '../../src/mirror/plan.js';
import { parseTalosVersion } from '../../src/mirror/talos-version.js';
import { buildPatch } from '../../src/talos-patch/documents.js';
import { renderPatch } from '../../src/talos-patch/render.js';
import {
  checkNameserver,
  checkSearchDomain,
  checkTimeServer,
  checkVolumeSize,
  discoveryFrom,
  type AirgapSettings,
} from '../../src/talos-patch/settings.js';
import { installerReference, talosctlForm } from '../../src/talos-patch/talosctl.js';
import { NEWEST_TALOS, styleFor, versionOrNewest } from '../../src/talos-patch/versions.js';
import { UserInputError } from '../../src/util/user-input.js';
import { loadTalosSchema, schemaErrors } from '../helpers/talos-schema.js';

type Doc = Record<string, unknown>;

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

const mirrors = (o: Partial<MirrorOptions> = {}) =>
  planMirrors({
    endpoint: 'http://10.5.0.1:6000',
    registries: ['ghcr.io', 'registry.k8s.io'],
    keepRegistryHost: false,
    skipFallback: true,
    insecureSkipVerify: false,
    ...o,
  });

/** Every registry option at once: per-registry mirrors under a prefix, a CA and credentials. */
const fullMirrors = () =>
  mirrors({
    endpoint: 'https://registry.lan:5000',
    keepRegistryHost: true,
    repoPrefix: 'airgap',
    caPem: PEM,
    auth: { username: 'u', password: 'p' },
  });

const none: AirgapSettings = {
  timeServers: [],
  nameservers: [],
  searchDomains: [],
  discovery: { kind: 'default' },
  imageCache: undefined,
};

/** Every setting the version has a field for. */
function everything(version: string): AirgapSettings {
  const style = styleFor(parseTalosVersion(version));
  return {
    timeServers: ['10.5.0.1', 'ntp.lan'],
    nameservers: ['10.5.0.53', 'fd00::53'],
    searchDomains: style.searchDomains ? ['cluster.lan'] : [],
    discovery: { kind: 'endpoint', url: 'https://discovery.lan:3000' },
    imageCache: style.imageCache ? { volumeSize: '2GB' } : undefined,
  };
}

function docs(version: string, settings: AirgapSettings, plan = mirrors()): Doc[] {
  return yaml.loadAll(renderPatch(buildPatch(plan, settings, styleFor(parseTalosVersion(version))))) as Doc[];
}

const kinds = (ds: Doc[]) => ds.map((d) => (d.kind as string | undefined) ?? 'v1alpha1');
const part = (ds: Doc[], kind: string) => ds.find((d) => (d.kind ?? 'v1alpha1') === kind);

const VERSIONS = ['v1.8', 'v1.9', 'v1.12', 'v1.14'] as const;

describe.each(VERSIONS)('Talos %s', (version) => {
  const schema = loadTalosSchema(version);
  const check = (ds: Doc[]) => expect(ds.flatMap((d) => schemaErrors(schema, d))).toEqual([]);

  it('a combined patch of every option fits the published schema', () => {
    check(docs(version, everything(version), fullMirrors()));
  });

  it('the registry variants fit too: an insecure https endpoint, a plain one, discovery off', () => {
    check(
      docs(
        version,
        { ...none, discovery: { kind: 'off' } },
        mirrors({ endpoint: 'https://r.lan', insecureSkipVerify: true }),
      ),
    );
    check(docs(version, none));
  });
});

describe('where each setting goes', () => {
  it('Talos 1.8: v1alpha1 fields only, no skipFallback, discovery through cluster.discovery', () => {
    const [v1] = docs('v1.8', everything('v1.8'));
    expect(v1).toEqual({
      machine: {
        registries: { mirrors: { '*': { endpoints: ['http://10.5.0.1:6000'] } } },
        time: { servers: ['10.5.0.1', 'ntp.lan'] },
        network: { nameservers: ['10.5.0.53', 'fd00::53'] },
      },
      cluster: { discovery: { enabled: true, registries: { service: { endpoint: 'https://discovery.lan:3000' } } } },
    });
  });

  it('Talos 1.9: search domains, the image cache switch and the IMAGECACHE volume', () => {
    const ds = docs('v1.9', everything('v1.9'));
    expect(kinds(ds)).toEqual(['v1alpha1', 'VolumeConfig']);
    const machine = (part(ds, 'v1alpha1') as { machine: Doc }).machine;
    expect(machine.network).toEqual({ nameservers: ['10.5.0.53', 'fd00::53'], searchDomains: ['cluster.lan'] });
    expect(machine.features).toEqual({ imageCache: { localEnabled: true } });
    expect(part(ds, 'VolumeConfig')).toMatchObject({
      name: 'IMAGECACHE',
      provisioning: { minSize: '2GB', maxSize: '2GB' },
    });
  });

  it('Talos 1.12: registries, time and DNS as documents; discovery and image cache still v1alpha1', () => {
    const ds = docs('v1.12', everything('v1.12'));
    expect(kinds(ds)).toEqual(['v1alpha1', 'RegistryMirrorConfig', 'TimeSyncConfig', 'ResolverConfig', 'VolumeConfig']);
    expect(part(ds, 'v1alpha1')).toEqual({
      machine: { features: { imageCache: { localEnabled: true } } },
      cluster: { discovery: { enabled: true, registries: { service: { endpoint: 'https://discovery.lan:3000' } } } },
    });
    expect(part(ds, 'TimeSyncConfig')).toMatchObject({ ntp: { servers: ['10.5.0.1', 'ntp.lan'] } });
    expect(part(ds, 'ResolverConfig')).toMatchObject({
      nameservers: [{ address: '10.5.0.53' }, { address: 'fd00::53' }],
      searchDomains: { domains: ['cluster.lan'] },
    });
  });

  it('Talos 1.14: documents only, NTS off for the servers inside the gap', () => {
    const ds = docs('v1.14', everything('v1.14'));
    expect(kinds(ds)).toEqual([
      'RegistryMirrorConfig',
      'TimeSyncConfig',
      'ResolverConfig',
      'DiscoveryServiceConfig',
      'ImageCacheConfig',
      'VolumeConfig',
    ]);
    expect(part(ds, 'TimeSyncConfig')).toMatchObject({ ntp: { useNTS: false } });
    expect(part(ds, 'DiscoveryServiceConfig')).toMatchObject({ endpoint: 'https://discovery.lan:3000' });
    expect(part(ds, 'ImageCacheConfig')).toMatchObject({ local: { enabled: true } });
  });

  it('discovery off: cluster.discovery.enabled false where it exists, a note where only the document does', () => {
    expect(part(docs('v1.12', { ...none, discovery: { kind: 'off' } }), 'v1alpha1')).toMatchObject({
      cluster: { discovery: { enabled: false } },
    });
    const patch = buildPatch(mirrors(), { ...none, discovery: { kind: 'off' } }, styleFor(NEWEST_TALOS));
    expect(patch.v1alpha1).toEqual({});
    expect(patch.notes.join()).toMatch(/DiscoveryServiceConfig.*--with-cluster-discovery=false/);
  });

  it('the mirrors are the ones mirror-config writes, by its own mapping', () => {
    const ds = docs('v1.14', none, fullMirrors());
    expect(part(ds, 'RegistryMirrorConfig')).toEqual({
      apiVersion: 'v1alpha1',
      kind: 'RegistryMirrorConfig',
      name: 'ghcr.io',
      endpoints: [{ url: 'https://registry.lan:5000/v2/airgap/ghcr.io', overridePath: true }],
      skipFallback: true,
    });
    expect(kinds(ds)).toEqual([
      'RegistryMirrorConfig',
      'RegistryMirrorConfig',
      'RegistryAuthConfig',
      'RegistryTLSConfig',
    ]);
  });

  it('without --talos-version: the newest style, with a line saying so', () => {
    expect(versionOrNewest(undefined)).toEqual({
      version: NEWEST_TALOS,
      note: expect.stringMatching(/v1\.14 and later/),
    });
    expect(versionOrNewest('1.9.3')).toEqual({ version: { major: 1, minor: 9 } });
  });
});

describe('refusals', () => {
  const refused = (version: string, settings: Partial<AirgapSettings>) => () =>
    buildPatch(mirrors(), { ...none, ...settings }, styleFor(parseTalosVersion(version)));

  it('a field the version lacks, naming the version that brought it', () => {
    expect(refused('v1.8', { imageCache: {} })).toThrow(/^--image-cache needs Talos v1\.9 or later \(v1\.8 asked/);
    expect(refused('v1.8', { searchDomains: ['lan'] })).toThrow(/^--search-domain needs Talos v1\.9 or later/);
    expect(refused('v1.8', { imageCache: {} })).toThrow(UserInputError);
    expect(refused('v1.9', { imageCache: {}, searchDomains: ['lan'] })).not.toThrow();
  });

  it('time servers, nameservers and search domains that are not addresses or names', () => {
    for (const bad of ['a b', 'ntp..lan', '-ntp.lan', 'ntp.lan-', 'x'.repeat(64), 'http://ntp.lan', '\u001b[2J'])
      expect(() => checkTimeServer(bad), bad).toThrow(/^--time-server "/);
    for (const good of ['10.5.0.1', 'fd00::1', 'ntp.lan', 'time']) expect(checkTimeServer(good)).toBe(good);
    expect(() => checkNameserver('dns.lan')).toThrow(/^--nameserver "dns\.lan" is not an IP address/);
    expect(checkNameserver('fd00::53')).toBe('fd00::53');
    expect(() => checkSearchDomain('a_b')).toThrow(/^--search-domain/);
    expect(() => checkVolumeSize('lots')).toThrow(/^--image-cache-size/);
    expect(checkVolumeSize('1.5GiB')).toBe('1.5GiB');
  });

  it('control characters in a refused value are shown escaped', () => {
    expect(() => checkTimeServer('\u001b[2J')).toThrow('"\\x1b[2J"');
  });

  it('--discovery off with --discovery-endpoint, and an endpoint without scheme', () => {
    expect(() => discoveryFrom('off', 'https://d.lan')).toThrow(/--discovery off and --discovery-endpoint/);
    expect(() => discoveryFrom(undefined, 'discovery.lan:3000')).toThrow(
      /^--discovery-endpoint "discovery\.lan:3000" needs a scheme/,
    );
    expect(discoveryFrom(undefined, undefined)).toEqual({ kind: 'default' });
    expect(discoveryFrom('off', undefined)).toEqual({ kind: 'off' });
  });
});

describe('--format talosctl', () => {
  it('mirror flags, the bundle installer, discovery off, and which settings need the patch', () => {
    const installer = installerReference(['ghcr.io/siderolabs/kubelet:v1.31.1', 'ghcr.io/siderolabs/installer:v1.8.0']);
    const form = talosctlForm(mirrors(), { ...everything('v1.9'), discovery: { kind: 'off' } }, installer);
    expect(form.flags).toBe(
      "--registry-mirror '*=http://10.5.0.1:6000' --install-image ghcr.io/siderolabs/installer:v1.8.0 --with-cluster-discovery=false\n",
    );
    expect(form.needPatch).toEqual(['--time-server', '--nameserver', '--search-domain', '--image-cache']);
  });

  it('leaves mirrors flags cannot say in full (a prefix layout, a CA, credentials) to the patch, whole', () => {
    const form = talosctlForm(fullMirrors(), none, undefined);
    expect(form.flags).toBe('\n');
    expect(form.needPatch).toEqual([
      'the registry mirrors (mirror endpoints with overridePath (--keep-registry-host or --repo-prefix), a private CA (--ca-file), credentials)',
    ]);
  });

  it('finds an Image Factory installer, and never a reference that is not plain text', () => {
    const factory =
      'factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.14.0';
    expect(installerReference(['registry.k8s.io/pause:3.10', factory])).toBe(factory);
    expect(
      installerReference(['ghcr.io/x/installer:v1;rm -rf /', 'ghcr.io/siderolabs/installer-base:v1']),
    ).toBeUndefined();
  });
});

describe('the schema walker these tests rely on', () => {
  it('refuses a field a version lacks, a wrong type, a missing required field and an unknown kind', () => {
    const skip = { machine: { registries: { mirrors: { '*': { endpoints: ['http://r'], skipFallback: true } } } } };
    expect(schemaErrors(loadTalosSchema('v1.8'), skip)).toEqual([
      'v1alpha1.machine.registries.mirrors.*.skipFallback: not a field the schema has here',
    ]);
    expect(schemaErrors(loadTalosSchema('v1.9'), skip)).toEqual([]);
    expect(schemaErrors(loadTalosSchema('v1.12'), { machine: { time: { servers: ['ntp'] } } })).toHaveLength(1);
    expect(schemaErrors(loadTalosSchema('v1.14'), { cluster: { discovery: { enabled: false } } })).toHaveLength(1);
    expect(schemaErrors(loadTalosSchema('v1.12'), { apiVersion: 'v1alpha1', kind: 'ImageCacheConfig' })).toEqual([
      'kind ImageCacheConfig is not a document of this schema',
    ]);
    expect(
      schemaErrors(loadTalosSchema('v1.14'), { apiVersion: 'v1alpha1', kind: 'DiscoveryServiceConfig', endpoint: 'x' }),
    ).toEqual([
      'DiscoveryServiceConfig: required name missing',
      'DiscoveryServiceConfig.endpoint: "x" does not match ^(http|https|grpc)://',
    ]);
    expect(
      schemaErrors(loadTalosSchema('v1.12'), { kind: 'TimeSyncConfig', apiVersion: 'v1alpha1', ntp: { servers: 'a' } }),
    ).toEqual(['TimeSyncConfig.ntp.servers: not a list']);
  });
});
