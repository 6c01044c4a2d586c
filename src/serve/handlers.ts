import type { IncomingMessage, ServerResponse } from 'node:http';
import { printable } from '../util/text.js';
import type { ServedBlob, ServedContent } from './content.js';
import { BlobHealth } from './blob-health.js';
import { answerFiles, type ServedFiles } from './files.js';
import { answerCharts, type ServedChart } from './charts.js';
import { bytesMatch, readWhole, sendRange, sendWhole } from './blob-sender.js';
import { RegistryProblem } from './errors.js';
import { nextLink, pageOf } from './pagination.js';
import { parseRange } from './range.js';
import { referrerDescriptor, tagSchemaDescriptors, type ReferrerDescriptor } from './referrers.js';
import type { ManifestReference, PageQuery, Route } from './routes.js';

export interface ServeContext {
  content: ServedContent;
  /** The carried files, answered at /files/. */
  files: ServedFiles;
  /** The carried charts, answered as a classic repository at /charts/. */
  charts: readonly ServedChart[];
  health: BlobHealth;
  /** A line for the operator: a damaged blob, a read error. */
  warn: (line: string) => void;
}

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** Body bytes written, for the access log. */
  sent: { bytes: number };
}

const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';

function sendJson(x: Exchange, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify(value));
  x.res.writeHead(status, {
    'Content-Type': headers['Content-Type'] ?? 'application/json',
    'Content-Length': String(body.length),
    ...headers,
  });
  if (x.req.method === 'HEAD') return void x.res.end();
  x.sent.bytes += body.length;
  x.res.end(body);
}

/** Answers one parsed request; throws RegistryProblem for the spec's error answers. */
export async function handle(route: Route, x: Exchange, ctx: ServeContext): Promise<void> {
  if (route.kind === 'upload' || (x.req.method !== 'GET' && x.req.method !== 'HEAD'))
    throw new RegistryProblem('UNSUPPORTED', 'this registry is a read-only bundle: pulls only');
  switch (route.kind) {
    case 'base':
      return sendJson(x, 200, {});
    case 'catalog':
      return listing(x, '/v2/_catalog', 'repositories', ctx.content.names(), route.page);
    case 'tags':
      requireRepository(ctx, route.name, route.ns);
      return listing(x, `/v2/${route.name}/tags/list`, 'tags', ctx.content.tags(route.name, route.ns), route.page, {
        name: route.name,
      });
    case 'manifest':
      return manifest(x, ctx, route.name, route.ns, route.reference);
    case 'blob':
      return blob(x, ctx, route.name, route.ns, route.digest);
    case 'referrers':
      return referrers(x, ctx, route);
    case 'files':
      return answerFiles(route.name, x, ctx);
    case 'charts':
      return answerCharts(route.chart, x, ctx);
  }
}

function requireRepository(ctx: ServeContext, name: string, ns: string | undefined): void {
  if (!ctx.content.hasRepository(name, ns))
    throw new RegistryProblem('NAME_UNKNOWN', 'repository name not known to this registry');
}

function listing(
  x: Exchange,
  path: string,
  key: string,
  sorted: string[],
  page: PageQuery,
  extra: Record<string, string> = {},
): void {
  const { items, next } = pageOf(sorted, page);
  const headers: Record<string, string> = next && page.n ? { Link: nextLink(path, page.n, next) } : {};
  sendJson(x, 200, { ...extra, [key]: items }, headers);
}

function manifestDigest(ctx: ServeContext, name: string, ns: string | undefined, ref: ManifestReference): string {
  requireRepository(ctx, name, ns);
  if ('digest' in ref) {
    const b = ctx.content.blobs.get(ref.digest);
    if (!ctx.content.holds(name, ns, ref.digest) || (b?.role !== 'manifest' && b?.role !== 'index'))
      throw new RegistryProblem('MANIFEST_UNKNOWN', 'manifest unknown to this repository');
    return ref.digest;
  }
  const found = ctx.content.lookupTag(name, ns, ref.tag);
  if (!found) throw new RegistryProblem('MANIFEST_UNKNOWN', 'tag unknown to this repository');
  if ('ambiguous' in found)
    throw new RegistryProblem(
      'MANIFEST_UNKNOWN',
      `this tag is served from several registries (${found.ambiguous.join(', ')}) with different content: add ?ns=REGISTRY, or serve with --keep-registry-host`,
    );
  return found.digest;
}

async function manifest(
  x: Exchange,
  ctx: ServeContext,
  name: string,
  ns: string | undefined,
  ref: ManifestReference,
): Promise<void> {
  const digest = manifestDigest(ctx, name, ns, ref);
  const b = ctx.content.blobs.get(digest)!;
  refuseDamaged(ctx, digest, 'MANIFEST_UNKNOWN');
  const headers = { 'Content-Type': b.mediaType, 'Docker-Content-Digest': digest, 'Content-Length': String(b.size) };
  if (x.req.method === 'HEAD') {
    x.res.writeHead(200, headers);
    return void x.res.end();
  }
  const bytes = await readWhole(digest, b);
  if (!bytes) {
    damaged(ctx, digest, 'manifest');
    throw new RegistryProblem('MANIFEST_UNKNOWN', 'manifest damaged in the bundle');
  }
  ctx.health.markGood(digest);
  x.res.writeHead(200, headers);
  x.sent.bytes += bytes.length;
  x.res.end(bytes);
}

function refuseDamaged(ctx: ServeContext, digest: string, code: 'BLOB_UNKNOWN' | 'MANIFEST_UNKNOWN'): void {
  if (ctx.health.damage(digest) !== undefined)
    throw new RegistryProblem(code, 'damaged in the bundle: its bytes do not match its digest');
}

function damaged(ctx: ServeContext, digest: string, what: string): void {
  ctx.health.markDamaged(digest, 'bytes do not match the digest');
  ctx.warn(
    `${what} ${digest} is damaged in the bundle (its bytes do not match its digest): not served; copy the bundle again, or run verify`,
  );
}

async function blob(
  x: Exchange,
  ctx: ServeContext,
  name: string,
  ns: string | undefined,
  digest: string,
): Promise<void> {
  requireRepository(ctx, name, ns);
  if (!ctx.content.holds(name, ns, digest))
    throw new RegistryProblem('BLOB_UNKNOWN', 'blob unknown to this repository');
  refuseDamaged(ctx, digest, 'BLOB_UNKNOWN');
  const b = ctx.content.blobs.get(digest)!;
  const base = {
    'Docker-Content-Digest': digest,
    'Content-Type': 'application/octet-stream',
    'Accept-Ranges': 'bytes',
  };
  const range = parseRange(x.req.headers.range, b.size);
  if (range === 'unsatisfiable') {
    x.res.setHeader('Content-Range', `bytes */${b.size}`);
    throw new RegistryProblem('RANGE_INVALID', 'requested range not satisfiable');
  }
  if (x.req.method === 'HEAD' || !range) {
    x.res.writeHead(200, { ...base, 'Content-Length': String(b.size) });
    if (x.req.method === 'HEAD') return void x.res.end();
    const outcome = await sendWhole(x.res, digest, b, x.sent);
    if (outcome === 'damaged') damaged(ctx, digest, 'blob');
    else if (outcome === 'sent') ctx.health.markGood(digest);
    return;
  }
  await checkedForRanges(ctx, digest, b);
  x.res.writeHead(206, {
    ...base,
    'Content-Length': String(range.end - range.start + 1),
    'Content-Range': `bytes ${range.start}-${range.end}/${b.size}`,
  });
  await sendRange(x.res, b, range, x.sent);
}

/** A range is served only from a blob whose whole bytes were checked once. */
async function checkedForRanges(ctx: ServeContext, digest: string, b: ServedBlob): Promise<void> {
  if (ctx.health.isGood(digest)) return;
  const ok = await ctx.health.checkOnce(digest, () => bytesMatch(digest, b));
  if (!ok) {
    if (ctx.health.damage(digest) === undefined) damaged(ctx, digest, 'blob');
    throw new RegistryProblem('BLOB_UNKNOWN', 'damaged in the bundle: its bytes do not match its digest');
  }
  ctx.health.markGood(digest);
}

async function referrers(x: Exchange, ctx: ServeContext, route: Extract<Route, { kind: 'referrers' }>): Promise<void> {
  requireRepository(ctx, route.name, route.ns);
  const found = new Map<string, ReferrerDescriptor>();
  for (const record of ctx.content.artifactsOf(route.name, route.ns, route.digest)) {
    if (record.artifact?.kind !== 'referrer' && record.artifact?.kind !== 'referrers') continue;
    const b = ctx.content.blobs.get(record.digest);
    const bytes = b && ctx.health.damage(record.digest) === undefined ? await readWhole(record.digest, b) : undefined;
    if (!bytes) continue;
    const descriptors =
      record.artifact.kind === 'referrer'
        ? [referrerDescriptor(record, bytes, route.digest)].filter((d) => d !== undefined)
        : tagSchemaDescriptors(bytes).filter((d) => ctx.content.holds(route.name, route.ns, d.digest));
    for (const d of descriptors) if (!found.has(d.digest)) found.set(d.digest, d);
  }
  let manifests = [...found.values()];
  const headers: Record<string, string> = { 'Content-Type': INDEX_TYPE };
  if (route.artifactType !== undefined) {
    manifests = manifests.filter((d) => d.artifactType === route.artifactType);
    headers['OCI-Filters-Applied'] = 'artifactType';
  }
  sendJson(x, 200, { schemaVersion: 2, mediaType: INDEX_TYPE, manifests }, headers);
}

/** A request path for the access log: the client's text, escaped and bounded. */
export function loggedPath(target: string | undefined): string {
  return printable(target ?? '', 300);
}
