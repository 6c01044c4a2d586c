// Hostile bundles, each derived from one valid sample (writeTinyBundle, written by the tool's own
// writer): what an attacker who swaps the USB stick can hand the isolated side, sidecar included.
// Each case writes `b.tar` (and, unless the sidecar is the attack, a `b.tar.sha256` that MATCHES the
// crafted bytes: the attacker controls it too, so no case relies on a checksum mismatch) and says
// what every command must do with it. The classes:
//   wrong-repository    an import into a repository the bundle does not name;
//   tampered-structure  entries and headers the writer never produces (refused whole);
//   malformed-metadata  a metadata document that does not follow the model;
//   exhaustion          bundles built to cost time or memory;
//   sidecar             a `.sha256` beside the bundle that is not a regular file;
//   tar                 tar-level attacks: traversal, links, devices, duplicates, truncation,
//                       compression, absurd or overridden sizes;
//   control             valid bundles: they prove the crafting is sound and that only what is
//                       hostile is refused.
// The in-process fuzzing of the bundle reader runs the tar-level cases too: each attack is
// defined here once.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { BlobRecord, BundleMetadata, ImageRecord } from '../../src/bundle/format.js';
import { buildIndex } from '../../src/bundle/layout-index.js';
import {
  BLOCK,
  END_OF_ARCHIVE,
  TarFile,
  dirEntry,
  entry,
  fileEntry,
  gnuLongNameEntry,
  padded,
  paxEntry,
  renamed,
  splitTar,
  ustarHeader,
  withData,
  type RawEntry,
} from './raw-tar.js';
import { writeTinyBundle } from './tiny-bundle.js';
import { sha256Hex } from '../../scripts/lib/digest.js';

export type Command = 'verify' | 'verify-json' | 'inspect' | 'import' | 'mirror-config';
export type CaseClass =
  'wrong-repository' | 'tampered-structure' | 'malformed-metadata' | 'exhaustion' | 'sidecar' | 'tar' | 'control';

/** Every class, for tests that check the corpus covers each. */
export const CASE_CLASSES: readonly CaseClass[] = [
  'wrong-repository',
  'tampered-structure',
  'malformed-metadata',
  'exhaustion',
  'sidecar',
  'tar',
  'control',
];

export interface RegistryExpectation {
  /**
   * untouched: not one request reaches the registry; no-writes: reads only (no PUT, POST,
   * PATCH or DELETE); writes: the import pushes (valid bundles, and bit rot's intact images).
   */
  access: 'untouched' | 'no-writes' | 'writes';
  /** `repository:tag` (before the import's repository prefix) that must be served afterwards. */
  tagged?: string[];
  /** `repository:tag` that must NOT be served afterwards. */
  notTagged?: string[];
  /** No repository of the registry's catalog may match this afterwards. */
  noRepository?: RegExp;
}

export interface Expectation {
  /** The exact exit code. */
  exit: number;
  /** The last line of stderr names the problem: it must match this. */
  names?: RegExp;
  /** stderr holds exactly one line (no report, no stack). */
  oneLine?: boolean;
  /** Each string must appear in stdout or stderr. */
  mentions?: string[];
  /** None of these may appear in stdout or stderr. */
  forbidden?: string[];
  maxMs?: number;
  /** Peak RSS of the child process. */
  maxRssMiB?: number;
  /** stdout and stderr together. */
  maxOutputBytes?: number;
  /** verify-json: a further check of the parsed report; returns what is wrong, or undefined. */
  report?: (r: Record<string, any>) => string | undefined;
  /** import only. */
  registry?: RegistryExpectation;
}

export interface BuiltCase {
  bundle: string;
  /** Names hostile entries point at: none may exist anywhere after the runs. */
  escapes: string[];
}

export interface HostileCase {
  id: string;
  cls: CaseClass;
  description: string;
  /** Writes the case into `dir` (which exists and is empty). */
  build(dir: string): BuiltCase;
  expected: Partial<Record<Command, Expectation>>;
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYOUT = Buffer.from('{"imageLayoutVersion":"1.0.0"}\n');
const MiB = 1024 * 1024;

const sha256 = sha256Hex;
const hexOf = (digest: string) => digest.slice(digest.indexOf(':') + 1);

/** The valid bundle every case is derived from, taken apart. */
export interface Sample {
  bytes: Buffer;
  entries: RawEntry[];
  metadata: BundleMetadata;
  /** The OCI index image (two platforms) and the Docker single-manifest image. */
  app: ImageRecord;
  tool: ImageRecord;
  toolLayer: BlobRecord;
  toolConfig: BlobRecord;
  toolManifest: BlobRecord;
  blob(digest: string): Buffer;
  entryIndex(name: string): number;
}

export async function makeSample(dir: string, seed = 14): Promise<Sample> {
  const file = join(dir, 'sample.tar');
  const metadata = await writeTinyBundle(join(dir, 'work'), file, seed);
  const bytes = readFileSync(file);
  const entries = splitTar(bytes);
  const app = metadata.images.find((i) => i.repository === 'fuzz/app')!;
  const tool = metadata.images.find((i) => i.repository === 'fuzz/tool')!;
  const rec = (d: string) => metadata.blobs.find((b) => b.digest === d)!;
  const toolRecords = tool.blobs.map(rec);
  const entryIndex = (name: string) => {
    const i = entries.findIndex((e) => e.name === name);
    if (i < 0) throw new Error(`sample has no entry ${name}`);
    return i;
  };
  return {
    bytes,
    entries,
    metadata,
    app,
    tool,
    toolLayer: toolRecords.find((b) => b.role === 'layer')!,
    toolConfig: toolRecords.find((b) => b.role === 'config')!,
    toolManifest: toolRecords.find((b) => b.role === 'manifest')!,
    blob: (d) => Buffer.from(entries[entryIndex(`blobs/sha256/${hexOf(d)}`)]!.data),
    entryIndex,
  };
}

/** Writes `b.tar` and, by default, a sidecar matching it. */
function emit(dir: string, bytes: Buffer, sidecarOf: Buffer | null = bytes): string {
  const bundle = join(dir, 'b.tar');
  writeFileSync(bundle, bytes);
  if (sidecarOf) writeFileSync(`${bundle}.sha256`, `${sha256(sidecarOf)}  b.tar\n`);
  return bundle;
}

const tar = (...parts: Buffer[]) => Buffer.concat([...parts, END_OF_ARCHIVE]);

/** The sample's entries with extra raw entries inserted after the entry named `after`. */
function inserted(s: Sample, after: string, extra: Buffer[]): Buffer {
  const i = s.entryIndex(after);
  return tar(...s.entries.slice(0, i + 1).map((e) => e.raw), ...extra, ...s.entries.slice(i + 1).map((e) => e.raw));
}

/** The sample's entries with the entry named `name` replaced by raw bytes. */
function replaced(s: Sample, name: string, by: Buffer[]): Buffer {
  const i = s.entryIndex(name);
  return tar(...s.entries.slice(0, i).map((e) => e.raw), ...by, ...s.entries.slice(i + 1).map((e) => e.raw));
}

/** Every entry of the sample, without the end-of-archive marker. */
const body = (s: Sample) => Buffer.concat(s.entries.map((e) => e.raw));

/**
 * The sample with its metadata changed by `mutate` (which edits a copy in place, or returns the
 * document's new text). With `reindex`, index.json is rebuilt from the changed images, so the
 * metadata's change is the bundle's only inconsistency.
 */
function withMetadata(
  s: Sample,
  mutate: (m: Record<string, any>) => string | void,
  opts: { reindex?: boolean } = {},
): Buffer {
  const m = structuredClone(s.metadata) as unknown as Record<string, any>;
  const text = mutate(m) ?? `${JSON.stringify(m, null, 2)}\n`;
  return tar(
    ...s.entries.map((e) => {
      if (e.name === 'airgap-bundle.json') return withData(e, Buffer.from(text));
      if (e.name === 'index.json' && opts.reindex) return withData(e, buildIndex(m.images as ImageRecord[]));
      return e.raw;
    }),
  );
}

/** Flips one byte in the middle of a blob's data: same size, same tar structure, wrong content. */
function flipped(data: Buffer): Buffer {
  const out = Buffer.from(data);
  const at = Math.floor(out.length / 2);
  out[at] = out[at]! ^ 0xff;
  return out;
}

/**
 * A bundle written straight as tar bytes: metadata, layout files, index.json, the blobs in the
 * order given, then `extra` entries. Used for the large cases, where helpers would be slow.
 */
function assemble(
  dir: string,
  doc: {
    metadata: Buffer;
    images: Array<Pick<ImageRecord, 'reference' | 'digest' | 'size' | 'mediaType'>>;
    blobs: Buffer[];
  },
  extra?: (t: TarFile) => void,
): string {
  const bundle = join(dir, 'b.tar');
  const t = new TarFile(bundle);
  // index.json as the writer makes it, with one annotation (keeps a huge reference under the index limit once).
  const index = Buffer.from(
    `${JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: doc.images.map((im) => ({ mediaType: im.mediaType, digest: im.digest, size: im.size, annotations: { [REF_NAME]: im.reference } })) })}\n`,
  );
  t.add(
    fileEntry('airgap-bundle.json', doc.metadata),
    fileEntry('oci-layout', LAYOUT),
    fileEntry('index.json', index),
    dirEntry('blobs/'),
    dirEntry('blobs/sha256/'),
  );
  for (const b of doc.blobs) t.add(fileEntry(`blobs/sha256/${sha256(b)}`, b));
  extra?.(t);
  t.add(END_OF_ARCHIVE);
  const hex = t.close();
  writeFileSync(`${bundle}.sha256`, `${hex}  ${basename(bundle)}\n`);
  return bundle;
}

function metadataDocument(s: Sample, images: ImageRecord[], blobs: BlobRecord[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: s.metadata.format,
      formatVersion: s.metadata.formatVersion,
      tool: s.metadata.tool,
      platforms: null,
      images,
      blobs,
    }),
  );
}

/**
 * The sample with the tool image's manifest replaced by `doc`: the new blob under its own digest,
 * and the metadata (image digest, size, blobs, bytes and the blob record) and index.json rewritten
 * to match, so every byte agrees with every digest, as it does in a bundle an attacker rebuilt.
 */
function withToolManifest(s: Sample, doc: Buffer): Buffer {
  const before = s.toolManifest.digest;
  const after = `sha256:${sha256(doc)}`;
  const m = structuredClone(s.metadata);
  const t = m.images.find((i) => i.repository === 'fuzz/tool')!;
  t.digest = after;
  t.size = doc.length;
  t.blobs = t.blobs.map((d) => (d === before ? after : d)).sort();
  t.bytes += doc.length - s.toolManifest.size;
  const record = m.blobs.find((b) => b.digest === before)!;
  record.digest = after;
  record.size = doc.length;
  return tar(
    ...s.entries.map((e) => {
      if (e.name === 'airgap-bundle.json') return withData(e, Buffer.from(`${JSON.stringify(m, null, 2)}\n`));
      if (e.name === 'index.json') return withData(e, buildIndex(m.images));
      if (e.name === `blobs/sha256/${hexOf(before)}`) return fileEntry(`blobs/sha256/${hexOf(after)}`, doc);
      return e.raw;
    }),
  );
}

/** The tool image's manifest with its one layer listed `count` times (compact JSON: under the manifest cap). */
function repeatedLayerManifest(s: Sample, count: number): Buffer {
  const m = JSON.parse(s.blob(s.toolManifest.digest).toString('utf8')) as { layers: unknown[] };
  const layer = m.layers[0];
  m.layers = Array.from({ length: count }, () => layer);
  return Buffer.from(JSON.stringify(m));
}

/** `count` copies of the tool image under distinct repositories, sharing its blobs. */
function manyTools(s: Sample, count: number, name: (i: number) => string): ImageRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    ...s.tool,
    reference: `registry.example/${name(i)}:v1`,
    repository: name(i),
  }));
}

/**
 * An index chain `depth` deep over the tool's manifest: index N lists index N-1, …, index 1 lists
 * the manifest. With `damageLayer`, the layer's bytes are changed (same size) in the tar.
 */
function indexChain(s: Sample, dir: string, depth: number, damageLayer: boolean): string {
  const docs: Buffer[] = [];
  let child: Record<string, unknown> = {
    mediaType: DOCKER_MANIFEST,
    digest: s.toolManifest.digest,
    size: s.toolManifest.size,
    platform: { os: 'linux', architecture: 'amd64' },
  };
  for (let k = 0; k < depth; k++) {
    const doc = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child] }));
    docs.push(doc);
    child = { mediaType: OCI_INDEX, digest: `sha256:${sha256(doc)}`, size: doc.length };
  }
  const top = docs[docs.length - 1]!;
  const indexRecords: BlobRecord[] = docs.map((d) => ({
    digest: `sha256:${sha256(d)}`,
    size: d.length,
    mediaType: OCI_INDEX,
    role: 'index',
  }));
  const blobs = [s.toolLayer, s.toolConfig, s.toolManifest, ...indexRecords];
  const below = docs.length > 1 ? indexRecords[indexRecords.length - 2]! : s.toolManifest;
  const image: ImageRecord = {
    reference: 'registry.example/fuzz/chain:v1',
    registry: 'registry.example',
    repository: 'fuzz/chain',
    tag: 'v1',
    digest: `sha256:${sha256(top)}`,
    mediaType: OCI_INDEX,
    size: top.length,
    platforms: [{ platform: 'linux/amd64', digest: below.digest, mediaType: below.mediaType, carried: true }],
    absent: [],
    blobs: blobs.map((b) => b.digest).sort(),
    bytes: blobs.reduce((n, b) => n + b.size, 0),
  };
  const layer = s.blob(s.toolLayer.digest);
  const parts = [layer, s.blob(s.toolConfig.digest), s.blob(s.toolManifest.digest), ...docs];
  const bundle = assemble(dir, { metadata: metadataDocument(s, [image], blobs), images: [image], blobs: parts });
  if (damageLayer) {
    // Rewrite the layer's data in place: its entry keeps its name (its real digest) and size.
    const bytes = readFileSync(bundle);
    const e = splitTar(bytes).find((x) => x.name === `blobs/sha256/${hexOf(s.toolLayer.digest)}`)!;
    flipped(layer).copy(bytes, e.offset + BLOCK);
    emit(dir, bytes);
  }
  return bundle;
}

/** Last-line patterns for the problems, loose enough for any wording that names the thing. */
const NAMES = {
  sidecar: /\.sha256|sidecar/i,
  depth: /nest|deep|depth|level/i,
  /** Either bound may be the one named when a case breaks two. */
  depthOrBound: /nest|deep|depth|level|limit|bound|more than/i,
};

/**
 * The cases. `marker` goes into every name a hostile entry points at, so the test can look for it
 * outside its temporary folder afterwards.
 */
export function hostileCases(s: Sample, marker: string): HostileCase[] {
  const toolHex = hexOf(s.toolLayer.digest);
  const toolLayerName = `blobs/sha256/${toolHex}`;
  const toolLayerEntry = () => s.entries[s.entryIndex(toolLayerName)]!;
  const strangerHex = sha256(`stranger-${marker}`);
  const reads = { access: 'no-writes' } as const;
  const tampered = (names: RegExp): HostileCase['expected'] => ({
    verify: { exit: 3, names },
    'verify-json': { exit: 3, names },
    import: { exit: 3, names, registry: reads },
  });
  const malformed = (names: RegExp): HostileCase['expected'] => ({
    verify: { exit: 3, names, oneLine: true },
    'verify-json': { exit: 3, names, oneLine: true },
    inspect: { exit: 3, names, oneLine: true },
    import: { exit: 3, names, oneLine: true, registry: { access: 'untouched' } },
    'mirror-config': { exit: 3, names, oneLine: true },
  });
  /** The tool image's record names another repository than its reference gives: refused everywhere, nothing pushed. */
  const repositoryCase = (
    id: string,
    description: string,
    names: { repository: string; reference: string },
    problem: RegExp,
  ): HostileCase => ({
    id,
    cls: 'wrong-repository',
    description,
    build: (dir) => ({
      bundle: emit(
        dir,
        withMetadata(
          s,
          (m) => {
            const t = toolIn(m);
            t.repository = names.repository;
            t.reference = names.reference;
          },
          { reindex: true },
        ),
      ),
      escapes: [],
    }),
    expected: {
      verify: { exit: 3, names: problem },
      'verify-json': { exit: 3, names: problem },
      import: { exit: 3, names: problem, registry: { access: 'no-writes', noRepository: /(^|\/)evil$/ } },
    },
  });
  /** Refused by verify, verify --json and import within 15 s, naming the problem; import only reads the registry. */
  const refusedQuickly = (names: RegExp): HostileCase['expected'] => ({
    verify: { exit: 3, names, maxMs: 15_000 },
    'verify-json': { exit: 3, names, maxMs: 15_000 },
    import: { exit: 3, names, maxMs: 15_000, registry: reads },
  });
  const metaCase = (
    id: string,
    description: string,
    names: RegExp,
    mutate: (m: Record<string, any>) => string | void,
    reindex = false,
  ): HostileCase => ({
    id,
    cls: 'malformed-metadata',
    description,
    build: (dir) => ({ bundle: emit(dir, withMetadata(s, mutate, { reindex })), escapes: [] }),
    expected: malformed(names),
  });
  const toolIn = (m: Record<string, any>) =>
    m.images.find((i: ImageRecord) => i.repository === 'fuzz/tool') as ImageRecord;
  const appIn = (m: Record<string, any>) =>
    m.images.find((i: ImageRecord) => i.repository === 'fuzz/app') as ImageRecord;
  const sampleCase = (dir: string) => ({ bundle: emit(dir, s.bytes), escapes: [] });

  return [
    // ---- controls: valid bundles, crafted the same ways as the hostile ones
    {
      id: 'control-sample',
      cls: 'control',
      description: 'the unmodified sample: verifies, imports and tags both images, configures mirrors',
      build: sampleCase,
      expected: {
        verify: { exit: 0 },
        'verify-json': { exit: 0, report: (r) => (r.ok === true ? undefined : 'report.ok is not true') },
        inspect: { exit: 0 },
        import: { exit: 0, registry: { access: 'writes', tagged: ['fuzz/app:v1', 'fuzz/tool:v1'] } },
        'mirror-config': { exit: 0 },
      },
    },
    {
      id: 'control-index-chain-3',
      cls: 'control',
      description: 'an index inside an index inside an index (3 deep, within bounds), all intact: verifies',
      build: (dir) => ({ bundle: indexChain(s, dir, 3, false), escapes: [] }),
      expected: {
        verify: { exit: 0 },
        'verify-json': { exit: 0, report: (r) => (r.ok === true ? undefined : 'report.ok is not true') },
      },
    },

    // ---- wrong-repository: a repository the bundle does not name
    repositoryCase(
      'repo-traversal',
      'reference, repository and index.json all name library/busybox/../../evil (the registry would normalise it to evil)',
      { repository: 'library/busybox/../../evil', reference: 'registry.example/library/busybox/../../evil:v1' },
      /\.\.|evil|repository|reference/i,
    ),
    repositoryCase(
      'repo-traversal-behind-valid-reference',
      "reference registry.example/library/busybox:v1, but the record's repository is library/busybox/../../evil",
      { repository: 'library/busybox/../../evil', reference: 'registry.example/library/busybox:v1' },
      /\.\.|evil|repository|reference/i,
    ),
    repositoryCase(
      'repo-differs-from-reference',
      'reference registry.example/library/busybox:v1, repository "evil": a valid name the reference does not give',
      { repository: 'evil', reference: 'registry.example/library/busybox:v1' },
      /evil|repository|reference/i,
    ),

    // ---- tampered-structure: refused, nothing at all is pushed
    {
      id: 'entry-dotdot',
      cls: 'tampered-structure',
      description: 'an extra entry "../<marker>-dotdot" after index.json',
      build: (dir) => ({
        bundle: emit(dir, inserted(s, 'index.json', [fileEntry(`../${marker}-dotdot`, Buffer.from('evil\n'))])),
        escapes: [`${marker}-dotdot`],
      }),
      expected: tampered(/\.\.|dotdot/),
    },
    {
      id: 'entry-pax-path-escape',
      cls: 'tampered-structure',
      description: 'a PAX header renaming the next entry to ../../<marker>-pax',
      build: (dir) => ({
        bundle: emit(
          dir,
          inserted(s, 'index.json', [paxEntry({ path: `../../${marker}-pax` }), fileEntry('x', Buffer.from('evil\n'))]),
        ),
        escapes: [`${marker}-pax`],
      }),
      expected: tampered(/pax|extended|\.\./i),
    },
    {
      id: 'entry-pax-renames-blob',
      cls: 'tampered-structure',
      description:
        'the tool layer stored under the ustar name "x-renamed", its blob name given only by a PAX path override',
      build: (dir) => ({
        bundle: emit(
          dir,
          replaced(s, toolLayerName, [paxEntry({ path: toolLayerName }), renamed(toolLayerEntry(), 'x-renamed')]),
        ),
        escapes: [],
      }),
      expected: tampered(/pax|extended|x-renamed/i),
    },
    {
      id: 'entry-gnu-longname-escape',
      cls: 'tampered-structure',
      description: 'a GNU long-name entry naming the next entry ../../<marker>-gnu',
      build: (dir) => ({
        bundle: emit(
          dir,
          inserted(s, 'index.json', [gnuLongNameEntry(`../../${marker}-gnu`), fileEntry('x', Buffer.from('evil\n'))]),
        ),
        escapes: [`${marker}-gnu`],
      }),
      expected: tampered(/long ?name|gnu|longlink|\.\./i),
    },
    {
      id: 'entry-gnu-longname-renames-blob',
      cls: 'tampered-structure',
      description:
        'the tool layer stored under the ustar name "x-renamed", its blob name given only by a GNU long-name entry',
      build: (dir) => ({
        bundle: emit(
          dir,
          replaced(s, toolLayerName, [gnuLongNameEntry(toolLayerName), renamed(toolLayerEntry(), 'x-renamed')]),
        ),
        escapes: [],
      }),
      expected: tampered(/long ?name|gnu|longlink|x-renamed/i),
    },
    {
      id: 'entry-symlink',
      cls: 'tampered-structure',
      description: 'an extra symlink entry blobs/sha256/<hex> -> /etc/passwd',
      build: (dir) => ({
        bundle: emit(
          dir,
          inserted(s, toolLayerName, [
            entry({ name: `blobs/sha256/${strangerHex}`, type: '2', linkname: '/etc/passwd' }),
          ]),
        ),
        escapes: [],
      }),
      expected: tampered(/link/i),
    },
    {
      id: 'entry-duplicate-blob',
      cls: 'tampered-structure',
      description: 'the tool layer entry twice, the second copy with other bytes of the same size',
      build: (dir) => ({
        bundle: emit(dir, inserted(s, toolLayerName, [withData(toolLayerEntry(), flipped(toolLayerEntry().data))])),
        escapes: [],
      }),
      expected: tampered(new RegExp(`twice|duplicate|${toolHex.slice(0, 12)}`, 'i')),
    },
    {
      id: 'entry-second-metadata',
      cls: 'tampered-structure',
      description: 'a second airgap-bundle.json after index.json, naming repository "evil" for the tool image',
      build: (dir) => {
        const m = structuredClone(s.metadata);
        m.images.find((i) => i.repository === 'fuzz/tool')!.repository = 'evil';
        return {
          bundle: emit(dir, inserted(s, 'index.json', [withData(s.entries[0]!, Buffer.from(JSON.stringify(m)))])),
          escapes: [],
        };
      },
      expected: tampered(/twice|duplicate|second|metadata|airgap-bundle\.json/i),
    },
    {
      id: 'pax-chain-100000',
      cls: 'tampered-structure',
      description:
        'the first blob preceded by 100,000 chained PAX extended headers of 1 KiB each (a comment record, no path override)',
      build: (dir) => {
        const bundle = join(dir, 'b.tar');
        const t = new TarFile(bundle);
        const first = s.entries.findIndex((e) => e.name.startsWith('blobs/sha256/') && e.type === '0');
        const pax = paxEntry({ comment: 'c'.repeat(BLOCK - 20) });
        if (pax.length !== 2 * BLOCK) throw new Error(`PAX header of ${pax.length} bytes, expected ${2 * BLOCK}`);
        for (const e of s.entries.slice(0, first)) t.add(e.raw);
        for (let i = 0; i < 100_000; i++) t.add(pax);
        for (const e of s.entries.slice(first)) t.add(e.raw);
        t.add(END_OF_ARCHIVE);
        writeFileSync(`${bundle}.sha256`, `${t.close()}  b.tar\n`);
        return { bundle, escapes: [] };
      },
      expected: {
        verify: { exit: 3, names: /extended header|pax/i, maxMs: 20_000, maxRssMiB: 400 },
        'verify-json': { exit: 3, names: /extended header|pax/i, maxMs: 20_000, maxRssMiB: 400 },
        import: {
          exit: 3,
          names: /extended header|pax/i,
          maxMs: 20_000,
          maxRssMiB: 400,
          registry: { access: 'untouched', notTagged: ['fuzz/app:v1', 'fuzz/tool:v1'] },
        },
      },
    },
    {
      id: 'zero-block-hidden-duplicate-blob',
      cls: 'tampered-structure',
      description:
        'every entry, then ONE zero block, then a smuggled second copy of the tool layer (other bytes), then the end marker',
      build: (dir) => ({
        bundle: emit(
          dir,
          tar(body(s), Buffer.alloc(BLOCK), withData(toolLayerEntry(), flipped(toolLayerEntry().data))),
        ),
        escapes: [],
      }),
      expected: tampered(/zero|block|end.of.archive|marker|hidden|after the end/i),
    },
    {
      id: 'zero-block-hidden-dotdot',
      cls: 'tampered-structure',
      description: 'every entry, then ONE zero block, then a hidden entry "../<marker>-hidden", then the end marker',
      build: (dir) => ({
        bundle: emit(dir, tar(body(s), Buffer.alloc(BLOCK), fileEntry(`../${marker}-hidden`, Buffer.from('evil\n')))),
        escapes: [`${marker}-hidden`],
      }),
      expected: tampered(/zero|block|end.of.archive|marker|hidden|after the end|\.\./i),
    },
    {
      id: 'bit-rot-one-layer',
      cls: 'tampered-structure',
      description:
        "contrast: one byte of the tool image's only layer changed (tar structure intact, sidecar as exported): the intact image is imported, the damaged one is not tagged",
      build: (dir) => {
        const bytes = Buffer.from(s.bytes);
        const e = toolLayerEntry();
        flipped(e.data).copy(bytes, e.offset + BLOCK);
        return { bundle: emit(dir, bytes, s.bytes), escapes: [] };
      },
      expected: {
        verify: { exit: 3, names: /damaged/i, mentions: [toolHex] },
        'verify-json': {
          exit: 3,
          names: /damaged/i,
          report: (r) => {
            const status = (ref: string) =>
              (r.images as Array<{ reference: string; status: string }>)?.find((i) => i.reference === ref)?.status;
            if (status(s.tool.reference) !== 'damaged')
              return `tool image status ${status(s.tool.reference)}, expected damaged`;
            if (status(s.app.reference) !== 'intact')
              return `app image status ${status(s.app.reference)}, expected intact`;
            return undefined;
          },
        },
        import: {
          exit: 3,
          names: /damaged/i,
          registry: { access: 'writes', tagged: ['fuzz/app:v1'], notTagged: ['fuzz/tool:v1'] },
        },
      },
    },

    // ---- malformed-metadata: one line, exit 3, everywhere; the registry never contacted
    metaCase('meta-volumes-null', '"volumes": null', /volumes/i, (m) => void (m.volumes = null)),
    metaCase(
      'meta-artifact-null',
      'an image with "artifact": null',
      /artifact/i,
      (m) => void (toolIn(m).artifact = null as never),
    ),
    metaCase(
      'meta-deep-nesting-in-field',
      'tool.build holds an array nested 100,000 levels deep',
      /nest|deep|depth|level/i,
      (m) => {
        m.tool.build = '@@deep@@';
        return JSON.stringify(m).replace('"@@deep@@"', `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
      },
    ),
    metaCase(
      'meta-blobs-omit-own-manifest',
      "the tool image's blobs list leaves out its own manifest",
      /manifest|blobs/i,
      (m) => {
        const t = toolIn(m);
        t.blobs = t.blobs.filter((d) => d !== s.toolManifest.digest);
      },
    ),
    metaCase(
      'meta-blobs-omit-child-manifests',
      "the app index's blobs list leaves out its platform manifests",
      /manifest|blobs/i,
      (m) => {
        const a = appIn(m);
        const children = new Set(a.platforms.map((p) => p.digest));
        a.blobs = a.blobs.filter((d) => !children.has(d));
      },
    ),
    metaCase(
      'meta-tag-dotdot',
      'the tool image\'s tag is "v1/../../evil"',
      /tag/i,
      (m) => void (toolIn(m).tag = 'v1/../../evil'),
    ),
    metaCase(
      'meta-digest-uppercase',
      "the tool manifest's digest in upper case, everywhere the metadata and index.json give it",
      /digest/i,
      (m) => {
        const up = `sha256:${hexOf(s.toolManifest.digest).toUpperCase()}`;
        const t = toolIn(m);
        t.digest = up;
        t.blobs = t.blobs.map((d) => (d === s.toolManifest.digest ? up : d));
        for (const b of m.blobs as BlobRecord[]) if (b.digest === s.toolManifest.digest) b.digest = up;
      },
      true,
    ),
    metaCase(
      'meta-digest-extra-chars',
      'a platform digest with extra characters ("sha256:<hex>/../x")',
      /digest/i,
      (m) => {
        const p = appIn(m).platforms[0]!;
        p.digest = `${p.digest}/../x`;
      },
    ),
    metaCase('meta-size-string', '"size" of a blob as a string', /size/i, (m) => {
      const b = (m.blobs as BlobRecord[]).find((x) => x.digest === s.toolLayer.digest)!;
      (b as { size: unknown }).size = String(b.size);
    }),
    metaCase(
      'meta-reference-control-char',
      'a reference holding ESC sequences (retitle the terminal, clear the screen) and BEL',
      /reference/i,
      (m) => {
        toolIn(m).reference = 'registry.example/fuzz/tool:v1\u001b]0;owned\u0007\u001b[2J';
      },
    ),

    // ---- exhaustion: bundles built to cost time or memory
    {
      id: 'huge-reference-among-5000',
      cls: 'exhaustion',
      description: "5,000 images sharing one image's blobs, one of them with an 8 MiB reference",
      build: (dir) => {
        const images = manyTools(s, 5000, (i) => `fuzz/tool-${i}`);
        const long = `fuzz/${'a'.repeat(8 * MiB)}`;
        images[2500] = { ...images[2500]!, reference: `registry.example/${long}:v1`, repository: long };
        const blobs = [s.toolLayer, s.toolConfig, s.toolManifest];
        return {
          bundle: assemble(dir, {
            metadata: metadataDocument(s, images, blobs),
            images,
            blobs: blobs.map((b) => s.blob(b.digest)),
          }),
          escapes: [],
        };
      },
      expected: {
        verify: {
          exit: 3,
          names: /reference|long|length|limit|characters/i,
          maxRssMiB: 400,
          maxOutputBytes: MiB,
          forbidden: ['a'.repeat(4096)],
        },
        'verify-json': {
          exit: 3,
          names: /reference|long|length|limit|characters/i,
          maxRssMiB: 400,
          maxOutputBytes: 4 * MiB,
          forbidden: ['a'.repeat(4096)],
        },
      },
    },
    {
      id: 'many-images-20000',
      cls: 'exhaustion',
      description:
        "20,000 small image records sharing one image's blobs (valid, at the bound): inspect and verify finish, not quadratic",
      build: (dir) => {
        const images = manyTools(s, 20_000, (i) => `fuzz/tool-${i}`);
        const blobs = [s.toolLayer, s.toolConfig, s.toolManifest];
        return {
          bundle: assemble(dir, {
            metadata: metadataDocument(s, images, blobs),
            images,
            blobs: blobs.map((b) => s.blob(b.digest)),
          }),
          escapes: [],
        };
      },
      expected: {
        inspect: { exit: 0, maxMs: 20_000, mentions: ['registry.example/fuzz/tool-19999:v1'] },
        verify: { exit: 0, maxMs: 20_000 },
      },
    },
    {
      id: 'empty-entries-400000',
      cls: 'exhaustion',
      description: 'the sample followed by 400,000 empty entries with blob-like names',
      build: (dir) => {
        const bundle = join(dir, 'b.tar');
        const t = new TarFile(bundle);
        t.add(body(s));
        t.addEmptyFiles(400_000, (i) => `blobs/sha256/${i.toString(16).padStart(64, 'f')}`);
        t.add(END_OF_ARCHIVE);
        writeFileSync(`${bundle}.sha256`, `${t.close()}  b.tar\n`);
        return { bundle, escapes: [] };
      },
      expected: {
        verify: { exit: 3, names: /entries|entry|limit|many/i, maxRssMiB: 400, maxOutputBytes: MiB, maxMs: 40_000 },
        'verify-json': {
          exit: 3,
          names: /entries|entry|limit|many/i,
          maxRssMiB: 400,
          maxOutputBytes: 4 * MiB,
          maxMs: 40_000,
        },
        import: { exit: 3, names: /entries|entry|limit|many/i, maxRssMiB: 400, maxMs: 40_000, registry: reads },
      },
    },
    {
      id: 'layer-size-1tib',
      cls: 'exhaustion',
      description: 'the metadata gives the tool layer (really ~1 KiB) a size of 1 TiB',
      build: (dir) => ({
        bundle: emit(
          dir,
          withMetadata(s, (m) => {
            const b = (m.blobs as BlobRecord[]).find((x) => x.digest === s.toolLayer.digest)!;
            const t = toolIn(m);
            t.bytes += 2 ** 40 - b.size;
            b.size = 2 ** 40;
          }),
        ),
        escapes: [],
      }),
      expected: {
        verify: { exit: 3, names: /size|1099511627776|TiB|bytes/i },
        'verify-json': { exit: 3, names: /size|1099511627776|TiB|bytes/i },
        import: { exit: 3, names: /size|1099511627776|TiB|bytes/i, maxMs: 15_000, registry: reads },
      },
    },
    {
      id: 'index-chain-10000',
      cls: 'exhaustion',
      description:
        'an image whose top index starts a chain of 10,000 nested indexes (past the nesting bound and, with its manifest, config and layer, the per-image blob bound)',
      build: (dir) => ({ bundle: indexChain(s, dir, 10_000, false), escapes: [] }),
      expected: refusedQuickly(NAMES.depthOrBound),
    },
    {
      id: 'index-chain-9997',
      cls: 'exhaustion',
      description:
        'a chain of 9,997 nested indexes: the image needs exactly 10,000 blobs (the per-image bound), so only the nesting is wrong',
      build: (dir) => ({ bundle: indexChain(s, dir, 9_997, false), escapes: [] }),
      expected: refusedQuickly(NAMES.depth),
    },
    {
      id: 'index-chain-100',
      cls: 'exhaustion',
      description: 'a chain of 100 nested indexes: past the nesting bound, under every other bound',
      build: (dir) => ({ bundle: indexChain(s, dir, 100, false), escapes: [] }),
      expected: refusedQuickly(NAMES.depth),
    },
    {
      id: 'index-chain-3-damaged-layer',
      cls: 'exhaustion',
      description:
        'an index chain 3 deep (within bounds) whose innermost layer is damaged: verify walks every level and names it',
      build: (dir) => ({ bundle: indexChain(s, dir, 3, true), escapes: [] }),
      expected: {
        verify: { exit: 3, names: /damaged/i, mentions: [toolHex] },
        'verify-json': {
          exit: 3,
          names: /damaged/i,
          report: (r) => {
            const im = (r.images as Array<{ status: string; problems: string[] }>)?.[0];
            if (im?.status !== 'damaged') return `image status ${im?.status}, expected damaged`;
            if (!im.problems.some((p) => p.includes(toolHex)))
              return `the image's problems do not name layer ${s.toolLayer.digest}: ${JSON.stringify(im.problems)}`;
            return undefined;
          },
        },
        import: { exit: 3, names: /damaged/i, registry: { access: 'writes', notTagged: ['fuzz/chain:v1'] } },
      },
    },

    {
      id: 'layers-25000',
      cls: 'exhaustion',
      description:
        "the tool image's manifest lists its layer 25,000 times (under the 4 MiB manifest cap, past the 1,000-layer bound), metadata and index.json rewritten to match its digest",
      build: (dir) => {
        const doc = repeatedLayerManifest(s, 25_000);
        if (doc.length >= 4 * MiB) throw new Error(`the 25,000-layer manifest is ${doc.length} bytes, not under 4 MiB`);
        return { bundle: emit(dir, withToolManifest(s, doc)), escapes: [] };
      },
      expected: {
        verify: { exit: 3, names: /25000 layers/, maxMs: 20_000 },
        import: {
          exit: 3,
          names: /25000 layers/,
          maxMs: 20_000,
          registry: { access: 'no-writes', notTagged: ['fuzz/app:v1', 'fuzz/tool:v1'] },
        },
      },
    },

    // ---- sidecar: a .sha256 that is not a regular file
    {
      id: 'sidecar-symlink-dev-zero',
      cls: 'sidecar',
      description: 'b.tar.sha256 is a symlink to /dev/zero',
      build: (dir) => {
        const bundle = emit(dir, s.bytes, null);
        symlinkSync('/dev/zero', `${bundle}.sha256`);
        return { bundle, escapes: [] };
      },
      expected: {
        verify: { exit: 3, names: NAMES.sidecar, maxMs: 10_000, maxRssMiB: 400 },
        'verify-json': { exit: 3, names: NAMES.sidecar, maxMs: 10_000, maxRssMiB: 400 },
      },
    },
    {
      id: 'sidecar-fifo',
      cls: 'sidecar',
      description: 'b.tar.sha256 is a FIFO nobody writes to',
      build: (dir) => {
        const bundle = emit(dir, s.bytes, null);
        execFileSync('mkfifo', [`${bundle}.sha256`]);
        return { bundle, escapes: [] };
      },
      expected: {
        verify: { exit: 3, names: NAMES.sidecar, maxMs: 10_000 },
        'verify-json': { exit: 3, names: NAMES.sidecar, maxMs: 10_000 },
      },
    },
    {
      id: 'sidecar-directory',
      cls: 'sidecar',
      description: 'b.tar.sha256 is a directory',
      build: (dir) => {
        const bundle = emit(dir, s.bytes, null);
        mkdirSync(`${bundle}.sha256`);
        return { bundle, escapes: [] };
      },
      expected: {
        verify: { exit: 3, names: NAMES.sidecar, maxMs: 10_000 },
        'verify-json': { exit: 3, names: NAMES.sidecar, maxMs: 10_000 },
      },
    },

    // ---- tar: tar-level attacks, refused, and import pushes nothing
    {
      id: 'tar-absolute-path',
      cls: 'tar',
      description: 'an extra entry /tmp/<marker>-abs',
      build: (dir) => ({
        bundle: emit(dir, inserted(s, 'index.json', [fileEntry(`/tmp/${marker}-abs`, Buffer.from('evil\n'))])),
        escapes: [`/tmp/${marker}-abs`],
      }),
      expected: tampered(/absolute|\/tmp\//i),
    },
    {
      id: 'tar-hardlink',
      cls: 'tar',
      description: 'an extra hard link blobs/sha256/<hex> -> ../../<marker>-hardlink',
      build: (dir) => ({
        bundle: emit(
          dir,
          inserted(s, toolLayerName, [
            entry({ name: `blobs/sha256/${strangerHex}`, type: '1', linkname: `../../${marker}-hardlink` }),
          ]),
        ),
        escapes: [`${marker}-hardlink`],
      }),
      expected: tampered(/link/i),
    },
    {
      id: 'tar-char-device',
      cls: 'tar',
      description: 'an extra character device entry',
      build: (dir) => ({
        bundle: emit(dir, inserted(s, toolLayerName, [entry({ name: `blobs/sha256/${strangerHex}`, type: '3' })])),
        escapes: [],
      }),
      expected: tampered(/device|character/i),
    },
    {
      id: 'tar-fifo-entry',
      cls: 'tar',
      description: 'an extra FIFO entry',
      build: (dir) => ({
        bundle: emit(dir, inserted(s, toolLayerName, [entry({ name: `blobs/sha256/${strangerHex}`, type: '6' })])),
        escapes: [],
      }),
      expected: tampered(/fifo/i),
    },
    {
      id: 'tar-duplicate-index-json',
      cls: 'tar',
      description: 'index.json twice',
      build: (dir) => ({
        bundle: emit(dir, inserted(s, 'index.json', [s.entries[s.entryIndex('index.json')]!.raw])),
        escapes: [],
      }),
      expected: tampered(/twice|duplicate|index\.json/i),
    },
    {
      id: 'tar-truncated',
      cls: 'tar',
      description: 'the archive cut in the middle of its last blob',
      build: (dir) => {
        const last = s.entries[s.entries.length - 1]!;
        return { bundle: emit(dir, s.bytes.subarray(0, last.offset + BLOCK + Math.floor(last.size / 2))), escapes: [] };
      },
      expected: tampered(/truncated/i),
    },
    {
      id: 'tar-gzip',
      cls: 'tar',
      description: 'the sample, gzip-compressed',
      build: (dir) => ({ bundle: emit(dir, gzipSync(s.bytes)), escapes: [] }),
      expected: tampered(/gzip|compressed/i),
    },
    {
      id: 'tar-size-8gib',
      cls: 'tar',
      description: 'the tool layer header claims 8 GiB (octal 77777777777)',
      build: (dir) => {
        const e = toolLayerEntry();
        const h = ustarHeader({ name: e.name, sizeField: Buffer.from('77777777777\0', 'latin1') });
        return { bundle: emit(dir, replaced(s, toolLayerName, [h, e.raw.subarray(BLOCK)])), escapes: [] };
      },
      expected: tampered(/truncated|size/i),
    },
    {
      id: 'tar-size-base256-negative',
      cls: 'tar',
      description: 'the tool layer header has a negative base-256 size',
      build: (dir) => {
        const e = toolLayerEntry();
        const h = ustarHeader({ name: e.name, sizeField: Buffer.alloc(12, 0xff) });
        return { bundle: emit(dir, replaced(s, toolLayerName, [h, e.raw.subarray(BLOCK)])), escapes: [] };
      },
      expected: tampered(/size|header/i),
    },
    {
      id: 'tar-control-chars-in-name',
      cls: 'tar',
      description: 'an extra entry whose name holds ESC sequences, BEL, CR and LF',
      build: (dir) => ({
        bundle: emit(
          dir,
          inserted(s, 'index.json', [
            fileEntry(Buffer.from('\u001b]0;owned\u0007\u001b[2Jblobs/\nx\r', 'latin1'), Buffer.from('x')),
          ]),
        ),
        escapes: [],
      }),
      expected: tampered(/refused|entry|name|layout/i),
    },
    {
      id: 'tar-dotdot-inside-blobs',
      cls: 'tar',
      description: 'an extra entry blobs/sha256/../../../<marker>-deep',
      build: (dir) => ({
        bundle: emit(
          dir,
          inserted(s, 'index.json', [fileEntry(`blobs/sha256/../../../${marker}-deep`, Buffer.from('evil\n'))]),
        ),
        escapes: [`${marker}-deep`],
      }),
      expected: tampered(/\.\.|deep/),
    },
    {
      id: 'tar-metadata-not-first',
      cls: 'tar',
      description: 'airgap-bundle.json stored last instead of first',
      build: (dir) => ({
        bundle: emit(dir, tar(...s.entries.slice(1).map((e) => e.raw), s.entries[0]!.raw)),
        escapes: [],
      }),
      expected: tampered(/first|metadata|airgap-bundle\.json/i),
    },
    {
      id: 'tar-metadata-claims-40mib',
      cls: 'tar',
      description: "airgap-bundle.json's header claims 40 MiB, and the archive ends after its real bytes",
      build: (dir) => {
        const m = s.entries[0]!;
        const h = ustarHeader({ name: m.name, size: 40 * MiB });
        return { bundle: emit(dir, tar(h, padded(Buffer.from(m.data)))), escapes: [] };
      },
      expected: tampered(/truncated|size|metadata|airgap-bundle\.json/i),
    },
    {
      id: 'tar-size-base256-huge',
      cls: 'tar',
      description: 'the tool layer header has a base-256 size of 2^63 - 1',
      build: (dir) => {
        const e = toolLayerEntry();
        const h = ustarHeader({
          name: e.name,
          sizeField: Buffer.from([0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        });
        return { bundle: emit(dir, replaced(s, toolLayerName, [h, e.raw.subarray(BLOCK)])), escapes: [] };
      },
      expected: tampered(/size|header|truncated/i),
    },
    {
      id: 'tar-pax-size-override',
      cls: 'tar',
      description: 'a PAX header giving the tool layer a size of 99999999999',
      build: (dir) => ({
        bundle: emit(dir, replaced(s, toolLayerName, [paxEntry({ size: '99999999999' }), toolLayerEntry().raw])),
        escapes: [],
      }),
      expected: tampered(/pax|extended|size|truncated/i),
    },
    {
      id: 'tar-pax-negative-size',
      cls: 'tar',
      description: 'a PAX header giving the tool layer a size of -5',
      build: (dir) => ({
        bundle: emit(dir, replaced(s, toolLayerName, [paxEntry({ size: '-5' }), toolLayerEntry().raw])),
        escapes: [],
      }),
      expected: tampered(/pax|extended|size|header/i),
    },
    {
      id: 'tar-pax-100kib',
      cls: 'tar',
      description: 'a 100 KiB PAX header of no valid records in front of the tool layer',
      build: (dir) => ({
        bundle: emit(
          dir,
          replaced(s, toolLayerName, [
            entry({ name: 'PaxHeaders/x', type: 'x' }, Buffer.alloc(100 * 1024, 0x41)),
            toolLayerEntry().raw,
          ]),
        ),
        escapes: [],
      }),
      expected: tampered(/pax|extended|header|record/i),
    },
  ];
}
