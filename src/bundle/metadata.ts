import { isValidMediaType } from '../oci/descriptor.js';
import { parsePlatform } from '../oci/platform.js';
import {
  formatReference,
  isValidDigest,
  isValidRepositoryPath,
  parseReference,
  ReferenceError,
  type Reference,
} from '../reference/reference.js';
import { JsonLimitError, parseBoundedJson } from '../util/json.js';
import { favourSmallHeap } from '../util/small-heap.js';
import { hasControlCharacters, printable } from '../util/text.js';
import {
  BUNDLE_FORMAT,
  FORMAT_VERSION,
  MAX_BLOBS,
  MAX_BLOBS_PER_IMAGE,
  MAX_FIELD_LENGTH,
  MAX_IMAGES,
  MAX_METADATA_BYTES,
  type BlobPart,
  type BlobRecord,
  type BlobRole,
  type BundleMetadata,
  type ImageRecord,
  type PlatformRecord,
  MAX_TRUSTED_ROOT_BYTES,
  type SignedRecord,
  CARRIED_KINDS,
  type CarriedRecord,
} from './format.js';
import { CARRIED_REGISTRY, isPlainFileName } from './carried.js';

/**
 * The bundle metadata comes from a file anyone with the USB stick can edit.
 * It is validated here, once, into the typed model every command works from:
 * types, required fields, bounded counts and lengths, canonical digests, and
 * the reference grammar for every registry, repository and tag (so no name can
 * carry `..`, a control character or a URL-normalised surprise into a path, a
 * config file, a request or a terminal). A document that fails is damaged.
 */
export class MetadataError extends Error {
  override name = 'MetadataError';
}

type Fields = Record<string, unknown>;

const ROLES: readonly BlobRole[] = ['layer', 'config', 'manifest', 'index'];
const ARTIFACT_KINDS = ['signature', 'attestation', 'sbom', 'referrers', 'referrer'] as const;
/** `created` is only ever written from SOURCE_DATE_EPOCH, as an ISO 8601 UTC instant. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
/** A volume set id: the sha256 hex the export computes. */
const SET_ID = /^[a-f0-9]{64}$/;
const MAX_VOLUMES = 999;
const MAX_DELTA_SOURCES = 64;
const MAX_PLATFORMS = 64;

function fail(what: string): never {
  throw new MetadataError(`metadata: ${what}`);
}

function object(value: unknown, where: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where} is not an object`);
  return value as Fields;
}

function list(value: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(value)) fail(`${where} is not a list`);
  if (value.length > max) fail(`${where} holds ${value.length} entries, more than the limit of ${max}`);
  return value;
}

/** A short string of plain text: no control characters, bounded length. */
function text(value: unknown, where: string, max = MAX_FIELD_LENGTH): string {
  if (typeof value !== 'string' || value.length === 0) fail(`${where} is not a non-empty string`);
  if (value.length > max) fail(`${where} is longer than ${max} characters`);
  if (hasControlCharacters(value)) fail(`${where} holds control characters`);
  return value;
}

/**
 * One string per distinct digest and media type while a metadata document is
 * read: JSON.parse makes a copy of every occurrence, and a digest appears in
 * the blob list and in every image that uses it (six times on average), so a
 * bundle of thousands of images held megabytes of copies for as long as it ran.
 */
let interned: Map<string, string> | undefined;

function intern(s: string): string {
  if (!interned) return s;
  const known = interned.get(s);
  if (known !== undefined) return known;
  interned.set(s, s);
  return s;
}

function digest(value: unknown, where: string): string {
  if (typeof value !== 'string' || !isValidDigest(value))
    fail(`${where} is an invalid digest (expected sha256:<64 lowercase hex>)`);
  return intern(value);
}

function size(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    fail(`${where} is an invalid size (expected a whole number of bytes)`);
  return value;
}

function count(value: unknown, where: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
    fail(`${where} is not a whole number from ${min} to ${max}`);
  return value;
}

function mediaType(value: unknown, where: string): string {
  if (!isValidMediaType(value)) fail(`${where} is not a media type`);
  return intern(value);
}

function optionalBoolean(value: unknown, where: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') fail(`${where} is not true or false`);
  return value;
}

function platformText(value: unknown, where: string): string {
  const s = text(value, where, 200);
  if (s === 'unknown/unknown') return s;
  try {
    parsePlatform(s);
  } catch {
    fail(`${where} is not os/arch[/variant]`);
  }
  return s;
}

/** A repository path, by the same grammar as references (lowercase components, no `..`). */
function repositoryPath(value: unknown, where: string): string {
  const s = text(value, where);
  if (!isValidRepositoryPath(s)) fail(`${where} "${printable(s, 80)}" is not a repository path`);
  return s;
}

export function parseMetadata(bytes: Buffer): BundleMetadata {
  // Every command that reads a bundle starts here: its memory should not grow with the image count.
  favourSmallHeap();
  if (bytes.length > MAX_METADATA_BYTES)
    throw new MetadataError(`metadata is ${bytes.length} bytes, more than the ${MAX_METADATA_BYTES}-byte limit`);
  let doc: unknown;
  try {
    doc = parseBoundedJson(bytes);
  } catch (err) {
    const why =
      err instanceof JsonLimitError ? err.message : `not valid JSON (${printable((err as Error).message, 120)})`;
    throw new MetadataError(`metadata is ${why}`);
  }
  interned = new Map();
  try {
    return metadataModel(object(doc, 'the document'));
  } finally {
    interned = undefined;
  }
}

function metadataModel(m: Fields): BundleMetadata {
  if (m.format !== BUNDLE_FORMAT) fail(`format is "${printable(String(m.format), 40)}", expected "${BUNDLE_FORMAT}"`);
  if (typeof m.formatVersion !== 'number' || m.formatVersion > FORMAT_VERSION) {
    fail(
      `format version ${printable(String(m.formatVersion), 20)} is newer than this tool understands (${FORMAT_VERSION}); upgrade airgap-bundle`,
    );
  }
  count(m.formatVersion, '"formatVersion"', 1, FORMAT_VERSION);
  const tool = object(m.tool, '"tool"');
  const volumes = m.volumes === undefined ? undefined : volumesModel(object(m.volumes, '"volumes"'));
  const blobs = list(m.blobs, '"blobs"', MAX_BLOBS).map((b, i) =>
    blobModel(object(b, `blobs[${i}]`), `blobs[${i}]`, volumes?.count),
  );
  const known = new Map<string, BlobRecord>();
  for (const b of blobs) {
    if (known.has(b.digest)) fail(`blob ${b.digest} is listed twice`);
    known.set(b.digest, b);
  }
  if (!volumes && blobs.some((b) => b.parts !== undefined || b.volume !== undefined))
    fail('a blob is assigned to a volume, but the bundle is not a volume set');
  const images = list(m.images, '"images"', MAX_IMAGES).map((im, i) =>
    imageModel(object(im, `images[${i}]`), `images[${i}]`, known),
  );
  return {
    format: BUNDLE_FORMAT,
    formatVersion: m.formatVersion as number,
    tool: { name: text(tool.name, 'tool.name'), version: text(tool.version, 'tool.version') },
    ...(m.created !== undefined ? { created: created(m.created) } : {}),
    platforms:
      m.platforms === null
        ? null
        : list(m.platforms, '"platforms"', MAX_PLATFORMS).map((p, i) => platformText(p, `platforms[${i}]`)),
    images,
    blobs,
    ...(m.delta !== undefined ? { delta: deltaModel(object(m.delta, '"delta"')) } : {}),
    ...(volumes ? { volumes } : {}),
    ...(m.trustedRoot !== undefined ? { trustedRoot: trustedRootModel(object(m.trustedRoot, '"trustedRoot"')) } : {}),
  };
}

function created(value: unknown): string {
  if (typeof value !== 'string' || !ISO_INSTANT.test(value)) fail('"created" is not an ISO 8601 UTC time');
  return value;
}

function deltaModel(d: Fields): { against: string[] } {
  return {
    against: list(d.against, 'delta.against', MAX_DELTA_SOURCES).map((a, i) => text(a, `delta.against[${i}]`, 4096)),
  };
}

function volumesModel(v: Fields): NonNullable<BundleMetadata['volumes']> {
  const total = count(v.count, 'volumes.count', 1, MAX_VOLUMES);
  const index = count(v.index, 'volumes.index', 1, total);
  if (typeof v.set !== 'string' || !SET_ID.test(v.set)) fail('volumes.set is not a volume set id');
  return { index, count: total, set: v.set };
}

function blobModel(r: Fields, where: string, volumeCount: number | undefined): BlobRecord {
  const role = r.role as BlobRole;
  if (!ROLES.includes(role)) fail(`${where}.role is not one of ${ROLES.join(', ')}`);
  const external = optionalBoolean(r.external, `${where}.external`);
  if (external && (role === 'manifest' || role === 'index'))
    fail(`${where} is an external ${role}; a bundle always carries its manifests`);
  const volumeLimit = volumeCount ?? MAX_VOLUMES;
  const out: BlobRecord = {
    digest: digest(r.digest, `${where}.digest`),
    size: size(r.size, `${where}.size`),
    mediaType: mediaType(r.mediaType, `${where}.mediaType`),
    role,
  };
  if (external !== undefined) out.external = external;
  if (r.mountFrom !== undefined) out.mountFrom = repositoryPath(r.mountFrom, `${where}.mountFrom`);
  if (r.volume !== undefined) out.volume = count(r.volume, `${where}.volume`, 1, volumeLimit);
  if (r.parts !== undefined) out.parts = partsModel(r, out, where, volumeLimit);
  return out;
}

/** A blob cut across volumes: parts in order, sizes adding up, each with its own sha256. */
function partsModel(r: Fields, blob: BlobRecord, where: string, volumeLimit: number): BlobPart[] {
  if (blob.external || (blob.role !== 'layer' && blob.role !== 'config'))
    fail(`${where} has parts but is not a carried config or layer`);
  if (blob.volume !== undefined) fail(`${where} has both a volume and parts`);
  const parts = list(r.parts, `${where}.parts`, MAX_VOLUMES).map((p, j) => {
    const q = object(p, `${where}.parts[${j}]`);
    const d = digest(q.digest, `${where}.parts[${j}].digest`);
    if (!d.startsWith('sha256:')) fail(`${where}.parts[${j}].digest is not a sha256 digest`);
    const n = size(q.size, `${where}.parts[${j}].size`);
    if (n === 0) fail(`${where}.parts[${j}] is empty`);
    return { digest: d, size: n, volume: count(q.volume, `${where}.parts[${j}].volume`, 1, volumeLimit) };
  });
  if (parts.length === 0) fail(`${where}.parts is empty`);
  const total = parts.reduce((s, p) => s + p.size, 0);
  if (total !== blob.size) fail(`the parts of ${where} add up to ${total} bytes, not ${blob.size}`);
  return parts;
}

function imageModel(r: Fields, where: string, known: Map<string, BlobRecord>): ImageRecord {
  const ref = referenceModel(r, where);
  const top = digest(r.digest, `${where}.digest`);
  if (ref.digest !== undefined && ref.digest !== top)
    fail(`${where}.reference pins ${ref.digest}, but its digest is ${top}`);
  const blobs = list(r.blobs, `${where}.blobs`, MAX_BLOBS_PER_IMAGE).map((d, j) => digest(d, `${where}.blobs[${j}]`));
  const own = new Set(blobs);
  if (own.size !== blobs.length) fail(`${where}.blobs lists a blob twice`);
  for (const d of blobs)
    if (!known.has(d)) fail(`${where} (${formatReference(ref)}) needs blob ${d}, which the bundle does not list`);
  const record = known.get(top);
  if (!record || !own.has(top)) fail(`${where} (${formatReference(ref)}) has a top manifest its blobs do not list`);
  if (record.role !== 'manifest' && record.role !== 'index')
    fail(`${where} (${formatReference(ref)}) has a top manifest listed as a ${record.role}`);
  const out: ImageRecord = {
    reference: formatReference(ref),
    registry: ref.registry,
    repository: ref.repository,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    digest: top,
    mediaType: mediaType(r.mediaType, `${where}.mediaType`),
    size: size(r.size, `${where}.size`),
    platforms: list(r.platforms, `${where}.platforms`, MAX_BLOBS_PER_IMAGE).map((p, j) =>
      platformModel(object(p, `${where}.platforms[${j}]`), `${where}.platforms[${j}]`),
    ),
    absent: list(r.absent, `${where}.absent`, MAX_BLOBS_PER_IMAGE).map((d, j) => digest(d, `${where}.absent[${j}]`)),
    blobs,
    bytes: size(r.bytes, `${where}.bytes`),
  };
  checkPlatformsListed(out, own, where);
  if (out.size !== record.size)
    fail(
      `${where} (${out.reference}) gives its top manifest a size of ${out.size} bytes, the blob list ${record.size}`,
    );
  if (r.artifact !== undefined)
    out.artifact = artifactModel(object(r.artifact, `${where}.artifact`), `${where}.artifact`);
  if (r.signed !== undefined) out.signed = signedModel(object(r.signed, `${where}.signed`), `${where}.signed`);
  if (r.carried !== undefined) out.carried = carriedModel(object(r.carried, `${where}.carried`), `${where}.carried`);
  if ((out.carried !== undefined) !== (out.registry === CARRIED_REGISTRY))
    fail(
      out.carried
        ? `${where} (${out.reference}) is a carried ${out.carried.kind} outside ${CARRIED_REGISTRY}`
        : `${where} (${out.reference}) is under ${CARRIED_REGISTRY} but is no carried chart or file`,
    );
  return out;
}

function carriedModel(c: Fields, where: string): CarriedRecord {
  const kind = c.kind as CarriedRecord['kind'];
  if (!CARRIED_KINDS.includes(kind)) fail(`${where}.kind is not one of ${CARRIED_KINDS.join(', ')}`);
  const name = text(c.name, `${where}.name`);
  if (!isPlainFileName(name)) fail(`${where}.name is not a plain file name`);
  return {
    kind,
    name,
    ...(c.version !== undefined ? { version: text(c.version, `${where}.version`, 128) } : {}),
    ...(c.appVersion !== undefined ? { appVersion: text(c.appVersion, `${where}.appVersion`, 128) } : {}),
    source: text(c.source, `${where}.source`, 2048),
    ...(c.mode !== undefined ? { mode: count(c.mode, `${where}.mode`, 0, 0o777) } : {}),
  };
}

function signedModel(s: Fields, where: string): SignedRecord {
  return {
    rule: text(s.rule, `${where}.rule`, 1024),
    signer: text(s.signer, `${where}.signer`, 1024),
    ...(s.issuer !== undefined ? { issuer: text(s.issuer, `${where}.issuer`, 1024) } : {}),
    ...(s.logIndex !== undefined
      ? { logIndex: count(s.logIndex, `${where}.logIndex`, 0, Number.MAX_SAFE_INTEGER) }
      : {}),
    ...(s.integratedTime !== undefined
      ? { integratedTime: count(s.integratedTime, `${where}.integratedTime`, 0, Number.MAX_SAFE_INTEGER) }
      : {}),
    signature: digest(s.signature, `${where}.signature`),
  };
}

/** The carried trusted root: bounded here, read as a root only where it is used (and trusted). */
function trustedRootModel(t: Fields): NonNullable<BundleMetadata['trustedRoot']> {
  return {
    source: text(t.source, 'trustedRoot.source', 1024),
    json: text(t.json, 'trustedRoot.json', MAX_TRUSTED_ROOT_BYTES),
  };
}

/**
 * What the metadata says of an index's children agrees with itself: a child
 * carried is among the image's blobs, a child left out is among its absent
 * ones. (The manifests themselves are checked against `blobs` by verify and
 * import, which read them.)
 */
function checkPlatformsListed(im: ImageRecord, own: Set<string>, where: string): void {
  const absent = new Set(im.absent);
  for (const p of im.platforms) {
    if (p.carried && !own.has(p.digest))
      fail(
        `${where} (${im.reference}) carries platform ${p.platform} (${p.digest}) but does not list it among its blobs`,
      );
    if (!p.carried && !absent.has(p.digest))
      fail(`${where} (${im.reference}) leaves out platform ${p.platform} (${p.digest}) but does not list it as absent`);
  }
}

/**
 * The reference must be exactly the normalised form of its registry,
 * repository and tag: one grammar, and no field that says something else
 * than the others (the repository is what the import pushes to).
 */
function referenceModel(r: Fields, where: string): Reference {
  const reference = text(r.reference, `${where}.reference`, 1024);
  let ref: Reference;
  try {
    ref = parseReference(reference);
  } catch (err) {
    fail(
      `${where}.reference: ${err instanceof ReferenceError ? err.reason : 'not a reference'} ("${printable(reference, 80)}")`,
    );
  }
  if (formatReference(ref) !== reference)
    fail(`${where}.reference "${printable(reference, 80)}" is not in normalised form`);
  if (r.registry !== ref.registry || r.repository !== ref.repository || r.tag !== ref.tag) {
    fail(`${where} (${reference}): registry, repository and tag do not match its reference`);
  }
  return ref;
}

function platformModel(q: Fields, where: string): PlatformRecord {
  const out: PlatformRecord = {
    platform: platformText(q.platform, `${where}.platform`),
    digest: digest(q.digest, `${where}.digest`),
    mediaType: mediaType(q.mediaType, `${where}.mediaType`),
    carried: q.carried === true,
  };
  if (typeof q.carried !== 'boolean') fail(`${where}.carried is not true or false`);
  if (q.attestationFor !== undefined) out.attestationFor = digest(q.attestationFor, `${where}.attestationFor`);
  return out;
}

function artifactModel(a: Fields, where: string): NonNullable<ImageRecord['artifact']> {
  const kind = a.kind as (typeof ARTIFACT_KINDS)[number];
  if (!ARTIFACT_KINDS.includes(kind)) fail(`${where}.kind is not one of ${ARTIFACT_KINDS.join(', ')}`);
  const of = text(a.of, `${where}.of`, 1024);
  try {
    parseReference(of);
  } catch {
    fail(`${where}.of is not a reference`);
  }
  return { kind, subject: digest(a.subject, `${where}.subject`), of };
}

export function buildMetadata(
  images: ImageRecord[],
  blobs: BlobRecord[],
  opts: {
    tool: { name: string; version: string };
    platforms: string[] | null;
    sourceDateEpoch?: number;
    deltaAgainst?: string[];
    trustedRoot?: BundleMetadata['trustedRoot'];
  },
): BundleMetadata {
  return {
    format: BUNDLE_FORMAT,
    formatVersion: FORMAT_VERSION,
    tool: opts.tool,
    ...(opts.sourceDateEpoch !== undefined ? { created: new Date(opts.sourceDateEpoch * 1000).toISOString() } : {}),
    platforms: opts.platforms,
    images,
    blobs,
    ...(opts.deltaAgainst && opts.deltaAgainst.length > 0 ? { delta: { against: opts.deltaAgainst } } : {}),
    ...(opts.trustedRoot ? { trustedRoot: opts.trustedRoot } : {}),
  };
}
