import { gunzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';
import { printable } from '../util/text.js';
import { ChartError } from './errors.js';

/** A file of a chart archive, read into memory. */
export interface ArchiveEntry {
  /** Normalised: `/`-separated, no `.` or empty parts, no `..`, not absolute. */
  path: string;
  data: Buffer;
}

/**
 * What one chart archive may hold. Charts are small (most are under 100 KiB
 * compressed; the largest, CRD-heavy ones a few MiB), so these bounds sit far
 * above real charts and far below what would hurt: the archive is read in
 * memory, never extracted to disk.
 */
export const ARCHIVE_BOUNDS = {
  compressedBytes: 20 << 20,
  uncompressedBytes: 100 << 20,
  /** One file (Helm's own reader allows 5 MiB; a CRD bundle may be bigger). */
  fileBytes: 20 << 20,
  entries: 10_000,
  depth: 32,
  pathLength: 1024,
} as const;

/**
 * What is left to unpack of one chart, shared by the archives nested in it
 * (`charts/*.tgz` inside a `.tgz`): a chain of nested archives cannot
 * multiply the bounds.
 */
export interface ArchiveBudget {
  bytes: number;
  entries: number;
}

export function newArchiveBudget(): ArchiveBudget {
  return { bytes: ARCHIVE_BOUNDS.uncompressedBytes, entries: ARCHIVE_BOUNDS.entries };
}

const BLOCK = 512;
/** Header types that are plain data. */
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
/** PAX records bigger than this are not names: refused rather than parsed. */
const MAX_PAX_BYTES = 64 * 1024;

/**
 * The files of a gzip-compressed tar, checked entry by entry: no links, devices
 * or other special entries, no absolute path or `..`, within ARCHIVE_BOUNDS.
 * Folders are dropped (a chart is its files). `where` names the chart in errors.
 */
export function readTgzEntries(tgz: Buffer, where: string, budget: ArchiveBudget = newArchiveBudget()): ArchiveEntry[] {
  if (tgz.length > ARCHIVE_BOUNDS.compressedBytes)
    throw new ChartError(
      `${where}: the archive is ${tgz.length} bytes, more than the ${ARCHIVE_BOUNDS.compressedBytes} a chart may be`,
    );
  let tar: Buffer;
  try {
    tar = gunzipSync(tgz, { maxOutputLength: Math.max(1, budget.bytes) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ChartError(
      code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError
        ? `${where}: the archive unpacks to more than ${ARCHIVE_BOUNDS.uncompressedBytes} bytes (with its subcharts); refused`
        : `${where}: not a gzip-compressed chart archive (${printable((err as Error).message, 100)})`,
    );
  }
  budget.bytes -= tar.length;
  const entries = tarEntries(tar, where);
  budget.entries -= entries.length;
  if (budget.entries < 0)
    throw new ChartError(`${where}: more than ${ARCHIVE_BOUNDS.entries} files with its subcharts; refused`);
  return entries;
}

function tarEntries(tar: Buffer, where: string): ArchiveEntry[] {
  const out: ArchiveEntry[] = [];
  const seen = new Set<string>();
  let pax: Pax | undefined;
  for (let offset = 0; offset + BLOCK <= tar.length;) {
    const block = tar.subarray(offset, offset + BLOCK);
    if (block.every((b) => b === 0)) break;
    const header = new Header(block);
    if (!header.cksumValid)
      throw new ChartError(`${where}: a tar header at byte ${offset} is damaged; not a chart archive`);
    const size = header.size ?? 0;
    const dataStart = offset + BLOCK;
    if (size < 0 || dataStart + size > tar.length) throw new ChartError(`${where}: the archive is cut short`);
    const data = tar.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (out.length + seen.size > ARCHIVE_BOUNDS.entries * 2)
      throw new ChartError(`${where}: more than ${ARCHIVE_BOUNDS.entries} entries; refused`);
    const type = header.type;
    if (type === 'ExtendedHeader' || type === 'OldExtendedHeader') {
      if (size > MAX_PAX_BYTES) throw new ChartError(`${where}: an oversized PAX header; refused`);
      pax = Pax.parse(data.toString('utf8'), undefined, false);
      continue;
    }
    // A global header (git archive writes one with the commit) says nothing about names we use.
    if (type === 'GlobalExtendedHeader') continue;
    const rawPath = pax?.path ?? header.path ?? '';
    pax = undefined;
    if (type === 'Directory') continue;
    if (!FILE_TYPES.has(type))
      throw new ChartError(
        `${where}: "${printable(rawPath, 120)}" is a ${printable(type, 30)} entry; a chart archive holds plain files only (no links or devices)`,
      );
    const path = safeEntryPath(rawPath, where);
    if (size > ARCHIVE_BOUNDS.fileBytes)
      throw new ChartError(
        `${where}: ${printable(path, 120)} is ${size} bytes, more than the ${ARCHIVE_BOUNDS.fileBytes} a chart file may be`,
      );
    if (seen.has(path)) throw new ChartError(`${where}: ${printable(path, 120)} appears twice; refused`);
    seen.add(path);
    out.push({ path, data: Buffer.from(data) });
    if (out.length > ARCHIVE_BOUNDS.entries)
      throw new ChartError(`${where}: more than ${ARCHIVE_BOUNDS.entries} files; refused`);
  }
  return out;
}

/** The path normalised, or an error for one that could leave the chart or hide a file. */
export function safeEntryPath(raw: string, where: string): string {
  const shown = printable(raw, 120);
  if (raw.length > ARCHIVE_BOUNDS.pathLength)
    throw new ChartError(`${where}: an entry name longer than ${ARCHIVE_BOUNDS.pathLength} characters`);
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw) || raw.includes('\\'))
    throw new ChartError(`${where}: "${shown}" is an absolute or Windows path; refused`);
  if (/[\u0000-\u001f\u007f]/.test(raw))
    throw new ChartError(`${where}: "${shown}" has control characters in its name; refused`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ChartError(`${where}: "${shown}" climbs out of the chart with ".."; refused`);
  if (parts.length === 0) throw new ChartError(`${where}: an entry with an empty name; refused`);
  if (parts.length > ARCHIVE_BOUNDS.depth)
    throw new ChartError(`${where}: "${shown}" is nested deeper than ${ARCHIVE_BOUNDS.depth} folders`);
  return parts.join('/');
}
