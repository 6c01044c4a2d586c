import { stat } from 'node:fs/promises';
import { carriedFiles, type CarriedFile } from '../files/carried-files.js';
import type { BlobHealth } from './blob-health.js';
import { bytesMatch, sendRange, sendWhole } from './blob-sender.js';
import type { ServedBlob } from './content.js';
import { RegistryProblem } from './errors.js';
import type { Exchange } from './handlers.js';
import { byteOrder } from './pagination.js';
import { parseRange } from './range.js';
import type { ServedUnit } from './units.js';
import { printable } from '../util/text.js';

/**
 * The files the bundles carry, answered at `/files/NAME` for clients that are
 * no registry client: curl and wget (`-C -` resumes a download), iPXE and
 * UEFI HTTP boot fetching a kernel and initramfs, an operator fetching
 * `talosctl`. Each is read from the tar by offset and hashed as it is sent,
 * like any blob: a damaged file is cut short of its Content-Length, never
 * completed, and then refused.
 */

/** A carried file with the bytes that serve it. */
export interface ServedFile extends CarriedFile {
  served: ServedBlob;
}

/** Every carried file of the bundles being served, by name (the first bundle given wins a name). */
export class ServedFiles {
  private readonly byName = new Map<string, ServedFile>();
  private readonly modified = new Map<string, Promise<Date>>();

  constructor(units: ServedUnit[], blobs: ReadonlyMap<string, ServedBlob>) {
    for (const unit of units)
      for (const file of carriedFiles(unit.metadata)) {
        const served = blobs.get(file.digest);
        if (served && !this.byName.has(file.name)) this.byName.set(file.name, { ...file, served });
      }
  }

  /** Served files, sorted by name. */
  list(): ServedFile[] {
    return [...this.byName.values()].sort((a, b) => byteOrder(a.name, b.name));
  }

  get(name: string): ServedFile | undefined {
    return this.byName.get(name);
  }

  /** When the bundle file(s) holding `file` last changed: the file's Last-Modified. */
  lastModified(file: ServedFile): Promise<Date> {
    let known = this.modified.get(file.name);
    if (!known) {
      known = Promise.all(file.served.pieces.map((p) => stat(p.file))).then(
        (infos) => new Date(Math.max(...infos.map((i) => Math.floor(i.mtimeMs / 1000) * 1000))),
      );
      this.modified.set(file.name, known);
    }
    return known;
  }
}

export interface FilesContext {
  files: ServedFiles;
  health: BlobHealth;
  warn: (line: string) => void;
}

/** Answers `GET`/`HEAD /files/` (the index) and `/files/NAME`. */
export async function answerFiles(name: string | undefined, x: Exchange, ctx: FilesContext): Promise<void> {
  if (name === undefined) return sendIndex(x, ctx.files);
  const file = ctx.files.get(name);
  if (!file) throw new RegistryProblem('NOT_FOUND', 'no file of that name in the bundle');
  return sendFile(x, ctx, file);
}

/**
 * The index, plain text: one line per file, `NAME<TAB>SIZE<TAB>DIGEST`. Text
 * rather than HTML: `cut -f1` or a shell loop reads it, and a name from the
 * bundle is never markup a browser interprets.
 */
function sendIndex(x: Exchange, files: ServedFiles): void {
  const body = Buffer.from(
    files
      .list()
      .map((f) => `${f.name}\t${f.size}\t${f.digest}\n`)
      .join(''),
  );
  x.res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length) });
  if (x.req.method === 'HEAD') return void x.res.end();
  x.sent.bytes += body.length;
  x.res.end(body);
}

async function sendFile(x: Exchange, ctx: FilesContext, file: ServedFile): Promise<void> {
  if (ctx.health.damage(file.digest) !== undefined)
    throw new RegistryProblem('NOT_FOUND', 'damaged in the bundle: its bytes do not match its digest');
  const etag = `"${file.digest}"`;
  const base = {
    'Content-Type': file.mediaType,
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Last-Modified': (await ctx.files.lastModified(file)).toUTCString(),
    'Docker-Content-Digest': file.digest,
  };
  if (matchesEtag(x.req.headers['if-none-match'], etag)) {
    x.res.writeHead(304, base);
    return void x.res.end();
  }
  const range = rangeAsked(x, etag, file.size);
  if (range === 'unsatisfiable') {
    x.res.setHeader('Content-Range', `bytes */${file.size}`);
    throw new RegistryProblem('RANGE_INVALID', 'requested range not satisfiable');
  }
  if (x.req.method === 'HEAD' || !range) {
    x.res.writeHead(200, { ...base, 'Content-Length': String(file.size) });
    if (x.req.method === 'HEAD') return void x.res.end();
    const outcome = await sendWhole(x.res, file.digest, file.served, x.sent);
    if (outcome === 'damaged') damaged(ctx, file);
    else if (outcome === 'sent') ctx.health.markGood(file.digest);
    return;
  }
  await checkedWhole(ctx, file);
  x.res.writeHead(206, {
    ...base,
    'Content-Length': String(range.end - range.start + 1),
    'Content-Range': `bytes ${range.start}-${range.end}/${file.size}`,
  });
  await sendRange(x.res, file.served, range, x.sent);
}

/** The range asked for, unless `If-Range` names other bytes than these (then the whole file, RFC 9110 13.1.5). */
function rangeAsked(x: Exchange, etag: string, size: number): ReturnType<typeof parseRange> {
  const ifRange = x.req.headers['if-range'];
  if (ifRange !== undefined && String(ifRange).trim() !== etag) return undefined;
  return parseRange(x.req.headers.range, size);
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => t.trim() === etag || t.trim() === '*');
}

/** A range is sent only from a file whose whole bytes were checked once: a range alone cannot be hashed. */
async function checkedWhole(ctx: FilesContext, file: ServedFile): Promise<void> {
  if (ctx.health.isGood(file.digest)) return;
  const ok = await ctx.health.checkOnce(file.digest, () => bytesMatch(file.digest, file.served));
  if (!ok) {
    if (ctx.health.damage(file.digest) === undefined) damaged(ctx, file);
    throw new RegistryProblem('NOT_FOUND', 'damaged in the bundle: its bytes do not match its digest');
  }
  ctx.health.markGood(file.digest);
}

function damaged(ctx: FilesContext, file: ServedFile): void {
  ctx.health.markDamaged(file.digest, 'bytes do not match the digest');
  ctx.warn(
    `file ${printable(file.name)} (${file.digest}) is damaged in the bundle (its bytes do not match its digest): not served; copy the bundle again, or run verify`,
  );
}
