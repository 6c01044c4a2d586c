// Talos refuses unknown keys in a machine config, so every key mirror-config writes must exist in
// the schema of the version asked for. The schema below is written from Talos's published
// configuration reference (v1alpha1 `machine.registries` for 1.8, the same plus skipFallback from
// 1.9, and the RegistryMirrorConfig/RegistryAuthConfig/RegistryTLSConfig documents of 1.12+), not
// taken from the code under test.
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { planMirrors, type MirrorOptions } from '../../src/mirror/plan.js';
import { talosMultiDoc, talosPatch } from '../../src/mirror/talos.js';
import {
  defaultTalosFormat,
  parseTalosVersion,
  talosctlFlags,
  talosFieldsFor,
} from '../../src/mirror/talos-version.js';
import { UserInputError } from '../../src/util/user-input.js';

const V1ALPHA1_1_8 = [
  'machine',
  'machine.registries',
  'machine.registries.mirrors',
  'machine.registries.mirrors.*',
  'machine.registries.mirrors.*.endpoints',
  'machine.registries.mirrors.*.overridePath',
  'machine.registries.config',
  'machine.registries.config.*',
  'machine.registries.config.*.auth',
  'machine.registries.config.*.auth.username',
  'machine.registries.config.*.auth.password',
  'machine.registries.config.*.tls',
  'machine.registries.config.*.tls.ca',
  'machine.registries.config.*.tls.insecureSkipVerify',
];
const V1ALPHA1_1_9 = [...V1ALPHA1_1_8, 'machine.registries.mirrors.*.skipFallback'];
const MULTIDOC_1_12: Record<string, string[]> = {
  RegistryMirrorConfig: [
    'apiVersion',
    'kind',
    'name',
    'endpoints',
    'endpoints.url',
    'endpoints.overridePath',
    'skipFallback',
  ],
  RegistryAuthConfig: ['apiVersion', 'kind', 'name', 'username', 'password'],
  RegistryTLSConfig: ['apiVersion', 'kind', 'name', 'ca', 'insecureSkipVerify'],
};

/** Every key path of a document; map keys under `mirrors` and `config` (registry names) become `*`. */
function keyPaths(doc: unknown, prefix = ''): string[] {
  if (Array.isArray(doc)) return doc.flatMap((d) => keyPaths(d, prefix));
  if (typeof doc !== 'object' || doc === null) return [];
  return Object.entries(doc).flatMap(([k, v]) => {
    const key = /(^|\.)(mirrors|config)$/.test(prefix) ? '*' : k;
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...keyPaths(v, path)];
  });
}

const base: MirrorOptions = {
  endpoint: 'https://10.5.0.1:6000',
  registries: ['ghcr.io', 'registry.k8s.io'],
  keepRegistryHost: true,
  repoPrefix: 'airgap',
  skipFallback: true,
  caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  insecureSkipVerify: false,
  auth: { username: 'u', password: 'p' },
};

function patchFor(version: string | undefined, options: MirrorOptions = base): string {
  const plan = planMirrors(options);
  const fields = talosFieldsFor('talos', version ? parseTalosVersion(version) : undefined, options.skipFallback);
  return talosPatch({ ...plan, options: { ...plan.options, skipFallback: fields.skipFallback } });
}

describe('Talos versions', () => {
  it.each(['v1.8', '1.8.4', 'v1.8.0-beta.1'])('a v1alpha1 patch for %s holds only keys Talos 1.8 reads', (version) => {
    const paths = keyPaths(yaml.load(patchFor(version)));
    expect(paths.filter((p) => !V1ALPHA1_1_8.includes(p))).toEqual([]);
    expect(paths).toContain('machine.registries.mirrors.*.overridePath');
  });

  it('a v1alpha1 patch for 1.9 and later, or for no version, carries skipFallback and nothing unknown', () => {
    for (const version of ['v1.9', '1.11.2', undefined]) {
      const paths = keyPaths(yaml.load(patchFor(version)));
      expect(paths.filter((p) => !V1ALPHA1_1_9.includes(p))).toEqual([]);
      expect(paths).toContain('machine.registries.mirrors.*.skipFallback');
    }
  });

  it('multi-document config for 1.12+ uses exactly the documented kinds and fields', () => {
    const docs = yaml.loadAll(talosMultiDoc(planMirrors(base))) as Array<{ kind: string }>;
    expect(new Set(docs.map((d) => d.kind))).toEqual(new Set(Object.keys(MULTIDOC_1_12)));
    for (const d of docs) expect(keyPaths(d).filter((p) => !MULTIDOC_1_12[d.kind]!.includes(p))).toEqual([]);
  });

  it('warns about the deprecated style for 1.12+, and refuses the multi-document style before 1.12', () => {
    expect(talosFieldsFor('talos', parseTalosVersion('v1.12'), true).warnings.join()).toMatch(/deprecated/);
    expect(talosFieldsFor('talos', parseTalosVersion('v1.11'), true).warnings).toEqual([]);
    expect(talosFieldsFor('talos', parseTalosVersion('v1.8'), true)).toEqual({
      skipFallback: false,
      warnings: [expect.stringMatching(/no skipFallback/)],
    });
    expect(() => talosFieldsFor('talos-multidoc', parseTalosVersion('v1.11'), true)).toThrow(UserInputError);
    expect(() => parseTalosVersion('latest')).toThrow(/not a Talos version/);
  });

  it('without --format, writes the style the asked version documents: multi-document from 1.12 on', () => {
    const cases: Array<[string | undefined, string]> = [
      [undefined, 'talos'],
      ['v1.8', 'talos'],
      ['1.11.5', 'talos'],
      ['v1.12', 'talos-multidoc'],
      ['1.12.0-beta.1', 'talos-multidoc'],
      ['v1.14', 'talos-multidoc'],
      ['v2.0', 'talos-multidoc'],
    ];
    for (const [version, format] of cases)
      expect(defaultTalosFormat(version === undefined ? undefined : parseTalosVersion(version)), version).toBe(format);
  });
});

describe('talosctl flags', () => {
  it("a host-stripped '*' mirror as --registry-mirror, insecure verify as its own flag", () => {
    const plan = planMirrors({
      ...base,
      keepRegistryHost: false,
      repoPrefix: undefined,
      caPem: undefined,
      auth: undefined,
      insecureSkipVerify: true,
      registries: [],
    });
    expect(talosctlFlags(plan)).toBe(
      "--registry-mirror '*=https://10.5.0.1:6000' --registry-insecure-skip-verify 10.5.0.1:6000\n",
    );
  });

  it('refuses what flags cannot express, pointing to the config-patch formats', () => {
    expect(() => talosctlFlags(planMirrors(base))).toThrow(/overridePath.*private CA.*credentials.*--format talos/);
  });
});
