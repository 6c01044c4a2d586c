import { gzipSync } from 'node:zlib';
import { bytesEntry, endOfArchive, type EntryStamp } from '../tar/entries.js';
import type { ArchiveEntry } from './archive.js';

/**
 * Every packaged chart gets the same header fields, so that packaging one
 * folder twice, on any machine, gives the same bytes: mode 0644, owner 0:0,
 * no user names, and one fixed time (SOURCE_DATE_EPOCH when set, else the epoch).
 */
function stamp(): EntryStamp {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  return { mtime: new Date(Number.isSafeInteger(epoch) && epoch >= 0 ? epoch * 1000 : 0) };
}

/** Chart.yaml first, as `helm package` writes it (tools that peek read the first entry), then values.yaml. */
const FIRST = ['Chart.yaml', 'values.yaml', 'values.schema.json'];

function order(a: ArchiveEntry, b: ArchiveEntry): number {
  const ra = FIRST.indexOf(a.path);
  const rb = FIRST.indexOf(b.path);
  if (ra >= 0 || rb >= 0) return (ra < 0 ? FIRST.length : ra) - (rb < 0 ? FIRST.length : rb);
  return Buffer.compare(Buffer.from(a.path), Buffer.from(b.path));
}

/**
 * A chart archive laid out as `helm package` lays it out: every file under
 * `NAME/`, Chart.yaml first, the rest in byte order of their paths, gzip at
 * level 9 with no name or time in its header. Deterministic: the same entries
 * always give the same bytes.
 */
export function packageChart(name: string, entries: readonly ArchiveEntry[]): Buffer {
  const at = stamp();
  const parts: Buffer[] = [];
  for (const e of [...entries].sort(order))
    for (const chunk of bytesEntry(`${name}/${e.path}`, e.data, at)) parts.push(chunk);
  parts.push(endOfArchive());
  return gzipSync(Buffer.concat(parts), { level: 9 });
}
