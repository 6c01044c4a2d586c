// One repository mapping, followed by every side: for random references and every mapping option,
// the repository import writes, the one serve answers, and the path each mirror format sends a node
// to must be the same. The mirror files are produced by the real writers and read back the way a
// node reads them (containerd's host resolution, Talos mirrors, k3s rewrites).
import { createHash } from 'node:crypto';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import type { BundleMetadata, ImageRecord } from '../../src/bundle/format.js';
import { givenMapping, mappingFrom } from '../../src/commands/target-options.js';
import { planImport } from '../../src/import/plan.js';
import { containerdHosts } from '../../src/mirror/containerd.js';
import { k3sRegistries } from '../../src/mirror/k3s.js';
import { planMirrors, type MirrorPlan } from '../../src/mirror/plan.js';
import { talosMultiDoc, talosPatch } from '../../src/mirror/talos.js';
import {
  hostPathSegment,
  isRegistryHost,
  mirrorPath,
  mappingProblem,
  normalisePrefix,
  repositoryMapping,
  targetRepository,
  type RepositoryMapping,
} from '../../src/reference/mapping.js';
import { parseReference } from '../../src/reference/reference.js';
import { talosPatchFor } from '../../src/serve/announce.js';
import { ServedContent, type ServedBlob } from '../../src/serve/content.js';
import { parseRoute } from '../../src/serve/routes.js';
import type { ServedUnit } from '../../src/serve/units.js';
import { prng } from '../helpers/prng.js';

const ENDPOINT = 'http://10.5.0.1:6000';
const CASES = 150;

/** Registries a bundle names: Docker Hub (short names included), dotted hosts, and hosts with ports. */
const FIXED_REGISTRIES = ['docker.io', 'ghcr.io', 'registry.k8s.io', 'quay.io', 'localhost:5000', '127.0.0.1:5000'];
/** Every mapping a command line can ask for: host kept or not, with no prefix, a plain one, or one typed with slashes. */
const MAPPING_ARGS = [false, true].flatMap((keep) =>
  [undefined, 'airgap', '/airgap/team-1/', 'a.b/c_d'].map((prefix) => ({
    'keep-registry-host': keep,
    ...(prefix !== undefined ? { 'repo-prefix': prefix } : {}),
  })),
);

type Random = ReturnType<typeof prng>;

function word(r: Random, length = r.int(1, 8)): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[r.int(0, alphabet.length - 1)];
  return s;
}

/** A path component with the separators the grammar allows between alphanumerics. */
function component(r: Random): string {
  let s = word(r);
  for (let i = r.int(0, 2); i > 0; i--) s += r.pick(['.', '_', '__', '-', '--']) + word(r);
  return s;
}

function registry(r: Random): string {
  switch (r.int(0, 3)) {
    case 0:
      return `${word(r)}.${word(r, 3)}:${r.int(1, 65535)}`;
    case 1:
      return `${r.int(1, 254)}.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}:${r.int(1, 65535)}`;
    default:
      return r.pick(FIXED_REGISTRIES);
  }
}

/** A reference as a user writes it in an image list, normalised the way export records it. */
function randomImage(r: Random): ImageRecord {
  const host = registry(r);
  const path = Array.from({ length: r.int(1, 3) }, () => component(r)).join('/');
  // A Docker Hub short name (`busybox`) is written without its host, as users do.
  const written = host === 'docker.io' && !path.includes('/') && r.int(0, 1) === 0 ? word(r) : `${host}/${path}`;
  const ref = parseReference(`${written}:${component(r).slice(0, 20)}`);
  const digest = `sha256:${createHash('sha256').update(`${ref.registry}/${ref.repository}:${ref.tag}`).digest('hex')}`;
  return {
    reference: `${ref.registry}/${ref.repository}:${ref.tag}`,
    registry: ref.registry,
    repository: ref.repository,
    tag: ref.tag!,
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 10,
    platforms: [],
    absent: [],
    blobs: [digest],
    bytes: 10,
  };
}

/** A few images, no two with the same repository path (a shared path is refused or needs `?ns=`, tested elsewhere). */
function randomBundle(r: Random): BundleMetadata {
  const byPath = new Map<string, ImageRecord>();
  for (let i = r.int(1, 6); i > 0; i--) {
    const image = randomImage(r);
    byPath.set(image.repository, image);
  }
  const images = [...byPath.values()];
  return {
    format: 'airgap-bundle/v1',
    formatVersion: 1,
    tool: { name: 'airgap-bundle', version: '0' },
    platforms: null,
    images,
    blobs: images.map((im) => ({ digest: im.digest, size: 10, mediaType: im.mediaType, role: 'manifest' as const })),
  } as BundleMetadata;
}

/** What `serve` answers from for these bundle metadata and this mapping. */
function servedContent(metadata: BundleMetadata, mapping: RepositoryMapping): ServedContent {
  const blobs = new Map<string, ServedBlob>(
    metadata.blobs.map((b) => [
      b.digest,
      { size: b.size, mediaType: b.mediaType, role: b.role, pieces: [{ file: 'b.tar', offset: 512, size: b.size }] },
    ]),
  );
  const unit: ServedUnit = { label: 'b.tar', metadata, blobs };
  return new ServedContent([unit], blobs, mapping);
}

/** A mirror as a node holds it: the URL it is sent to and whether that URL's path is the API root as it is. */
interface NodeMirror {
  url: string;
  overridePath: boolean;
  /** k3s: the repository the node asks for instead, `^(.*)$` → replacement. */
  rewrite?: string;
}

/**
 * The request target a node sends for `registry/repository:tag` through `mirror`: containerd (under
 * Talos, k3s or on its own) appends `/v2` unless the path is overridden, and adds `?ns=REGISTRY`.
 */
function nodeRequest(mirror: NodeMirror, image: ImageRecord): string {
  const url = new URL(mirror.url);
  const path = url.pathname.replace(/\/+$/, '');
  const root = mirror.overridePath ? path : `${path}/v2`;
  const repository = mirror.rewrite ? image.repository.replace(/^(.*)$/, mirror.rewrite) : image.repository;
  return `${root}/${repository}/manifests/${image.tag}?ns=${image.registry}`;
}

type MirrorLookup = (registry: string) => NodeMirror;

/** A Talos patch (`machine.registries.mirrors`): the registry's own mirror, else `'*'`. */
function talosMirrors(text: string): MirrorLookup {
  const doc = yaml.load(text) as {
    machine: { registries: { mirrors: Record<string, { endpoints: string[]; overridePath?: boolean }> } };
  };
  const mirrors = doc.machine.registries.mirrors;
  return (registry) => {
    const m = Object.hasOwn(mirrors, registry) ? mirrors[registry]! : mirrors['*']!;
    return { url: m.endpoints[0]!, overridePath: m.overridePath === true };
  };
}

/** Talos 1.12+ documents: the RegistryMirrorConfig named for the registry, else `'*'`. */
function talosDocuments(text: string): MirrorLookup {
  const docs = yaml.loadAll(text) as Array<{
    kind: string;
    name: string;
    endpoints?: Array<{ url: string; overridePath?: boolean }>;
  }>;
  const mirrors = new Map(docs.filter((d) => d.kind === 'RegistryMirrorConfig').map((d) => [d.name, d.endpoints![0]!]));
  return (registry) => {
    const e = mirrors.get(registry) ?? mirrors.get('*')!;
    return { url: e.url, overridePath: e.overridePath === true };
  };
}

/** k3s `registries.yaml`: the registry's mirror, else `'*'`, with its rewrite of the repository. */
function k3sMirrors(text: string): MirrorLookup {
  const doc = yaml.load(text) as {
    mirrors: Record<string, { endpoint: string[]; rewrite?: Record<string, string> }>;
  };
  return (registry) => {
    const m = Object.hasOwn(doc.mirrors, registry) ? doc.mirrors[registry]! : doc.mirrors['*']!;
    const rewrite = m.rewrite ? Object.entries(m.rewrite) : [];
    expect(
      rewrite.every(([pattern]) => pattern === '^(.*)$'),
      JSON.stringify(m.rewrite),
    ).toBe(true);
    return { url: m.endpoint[0]!, overridePath: false, ...(rewrite[0] ? { rewrite: rewrite[0][1] } : {}) };
  };
}

/**
 * containerd `certs.d`: the folder named for the registry, else `_default`; its first `[host."URL"]`
 * table is where the node is sent first, with `override_path` from that table.
 */
function containerdMirrors(plan: MirrorPlan): MirrorLookup {
  const folders = new Map(containerdHosts(plan).map((h) => [h.namespace, h.files['hosts.toml']!]));
  return (registry) => {
    const toml = folders.get(registry) ?? folders.get('_default')!;
    return firstHost(toml);
  };
}

function firstHost(toml: string): NodeMirror {
  const lines = toml.split('\n');
  const header = lines.findIndex((l) => l.startsWith('[host.'));
  expect(header, toml).toBeGreaterThanOrEqual(0);
  // The writer emits TOML basic strings with JSON-compatible escapes only.
  const url = JSON.parse(/^\[host\.("(?:[^"\\]|\\.)*")\]$/.exec(lines[header]!)![1]!) as string;
  const table = lines.slice(header + 1).filter((l) => l.startsWith('  '));
  return { url, overridePath: table.some((l) => l.trim() === 'override_path = true') };
}

/** What `serve` answers a node's manifest request with: the repository it read and the digest, or its refusal. */
function answer(served: ServedContent, target: string): { repository: string; digest: string | undefined } | string {
  let route;
  try {
    route = parseRoute(target);
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
  if (route.kind !== 'manifest' || !('tag' in route.reference)) return `not a tag request: ${route.kind}`;
  const found = served.lookupTag(route.name, route.ns, route.reference.tag);
  return { repository: route.name, digest: found && 'digest' in found ? found.digest : undefined };
}

/** Every mirror format for one plan, by the name a failure reports. */
function mirrorFormats(plan: MirrorPlan, mapping: RepositoryMapping): Record<string, MirrorLookup> {
  const registries = plan.options.registries;
  return {
    talos: talosMirrors(talosPatch(plan)),
    'talos-multidoc': talosDocuments(talosMultiDoc(plan)),
    'serve announcement': talosMirrors(talosPatchFor(ENDPOINT, registries, mapping, undefined)),
    containerd: containerdMirrors(plan),
    k3s: k3sMirrors(k3sRegistries(plan)),
  };
}

describe('repository mapping: import, serve and every mirror format agree', () => {
  it('for random references under every mapping option', () => {
    let checked = 0;
    for (let seed = 1; seed <= CASES; seed++) {
      const r = prng(seed);
      const metadata = randomBundle(r);
      const args = MAPPING_ARGS[seed % MAPPING_ARGS.length]!;
      const mapping = mappingFrom(args);
      const plan = planImport(metadata, mapping);
      const served = servedContent(metadata, mapping);
      // mirror-config checks the prefix among its other options and plans from the mapping as given.
      const mirrors = planMirrors({
        endpoint: ENDPOINT,
        registries: [...new Set(metadata.images.map((im) => im.registry))],
        ...givenMapping(args),
        skipFallback: r.int(0, 1) === 1,
        insecureSkipVerify: false,
      });
      const formats = mirrorFormats(mirrors, mapping);
      for (const planned of plan.images) {
        const image = planned.image;
        const where = `seed ${seed}, ${JSON.stringify(args)}, ${image.reference}`;
        expect(served.names(), where).toContain(planned.repository);
        for (const [format, lookup] of Object.entries(formats)) {
          const target = nodeRequest(lookup(image.registry), image);
          expect(answer(served, target), `${where}: ${format} sends the node to ${target}`).toEqual({
            repository: planned.repository,
            digest: image.digest,
          });
          checked++;
        }
      }
    }
    // Every case had at least one image, every image went through all five formats.
    expect(checked).toBeGreaterThanOrEqual(CASES * 5);
  });
});

describe('repository mapping rules', () => {
  it("turns a port's ':' into '_', so a host is one path component", () => {
    expect(hostPathSegment('127.0.0.1:5000')).toBe('127.0.0.1_5000');
    expect(hostPathSegment('ghcr.io')).toBe('ghcr.io');
  });

  it('names repositories: host dropped, kept, or under a prefix typed with slashes', () => {
    const image = { registry: 'localhost:5000', repository: 'siderolabs/installer' };
    expect(targetRepository(image, repositoryMapping(false))).toBe('siderolabs/installer');
    expect(targetRepository(image, repositoryMapping(true))).toBe('localhost_5000/siderolabs/installer');
    expect(targetRepository(image, repositoryMapping(true, '/proj/'))).toBe('proj/localhost_5000/siderolabs/installer');
    expect(targetRepository(image, repositoryMapping(false, 'a/b'))).toBe('a/b/siderolabs/installer');
  });

  it("sends the '*' mirror to the prefix alone, and a registry's mirror to its own path", () => {
    expect(mirrorPath('*', repositoryMapping(false))).toBe('');
    expect(mirrorPath('*', repositoryMapping(false, 'airgap'))).toBe('airgap');
    expect(mirrorPath('registry.k8s.io:443', repositoryMapping(true, 'airgap'))).toBe('airgap/registry.k8s.io_443');
  });

  it('normalises a prefix and refuses one outside the repository grammar, showing it safely', () => {
    expect(normalisePrefix('//airgap/team-1//')).toBe('airgap/team-1');
    expect(repositoryMapping(false, '/airgap/')).toEqual({ keepRegistryHost: false, repoPrefix: 'airgap' });
    expect(repositoryMapping(true, '')).toEqual({ keepRegistryHost: true });
    for (const bad of ['Bad Prefix', '../x', 'a:b', '/', 'a//b', 'air\ngap']) {
      expect(mappingProblem({ keepRegistryHost: false, repoPrefix: bad }), JSON.stringify(bad)).toMatch(
        /^--repo-prefix ".*" is not a valid repository path/,
      );
      expect(() => mappingFrom({ 'repo-prefix': bad }), JSON.stringify(bad)).toThrow(/--repo-prefix/);
    }
    expect(mappingProblem({ keepRegistryHost: true, repoPrefix: 'air\ngap' })).not.toContain('\n');
    expect(mappingProblem({ keepRegistryHost: true, repoPrefix: '/airgap/' })).toBeUndefined();
  });

  it('takes a registry host only as a normalised reference names it', () => {
    for (const ok of ['ghcr.io', 'localhost', 'localhost:5000', '127.0.0.1:5000', '[::1]:5000', 'docker.io'])
      expect(isRegistryHost(ok), ok).toBe(true);
    for (const bad of ['', 'index.docker.io', 'ghcr.io/x', '../x', 'a b', 'x'.repeat(300)])
      expect(isRegistryHost(bad), JSON.stringify(bad)).toBe(false);
  });
});
