// Tar archives written byte by byte, for test bundles that no well-behaved writer would produce:
// PAX and GNU long-name overrides, links and devices, absurd size fields, stray zero blocks, and
// archives of hundreds of thousands of entries written straight to disk in large chunks.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';

export const BLOCK = 512;
/** Two zero blocks: the end-of-archive marker. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/** ustar type flags used here: file, hard link, symlink, char device, block device, directory, FIFO, PAX, GNU long name. */
export type TypeFlag = '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x' | 'g' | 'L' | 'K' | 'S';

export interface HeaderFields {
  /** At most 100 bytes: longer names need a PAX or GNU long-name entry in front. */
  name: string | Buffer;
  type?: TypeFlag;
  size?: number;
  /** The raw 12-byte size field, for sizes no honest writer would encode. */
  sizeField?: Buffer;
  linkname?: string;
  mode?: number;
}

const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;

/** Recomputes the header checksum (the sum of all bytes, the checksum field counted as spaces). */
export function setChecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

export function ustarHeader(f: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  const name = typeof f.name === 'string' ? Buffer.from(f.name, 'utf8') : f.name;
  if (name.length > 100) throw new Error(`tar name of ${name.length} bytes needs a long-name entry`);
  name.copy(h, 0);
  const type = f.type ?? '0';
  h.write(octal(f.mode ?? (type === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  if (f.sizeField) f.sizeField.copy(h, 124, 0, 12);
  else h.write(octal(f.size ?? 0, 12), 124, 'latin1');
  h.write(octal(0, 12), 136, 'latin1');
  h.write(type, 156, 'latin1');
  if (f.linkname) h.write(f.linkname, 157, 100, 'utf8');
  h.write('ustar\u0000', 257, 'latin1');
  h.write('00', 263, 'latin1');
  return setChecksum(h);
}

/** `data` followed by zeros up to the next block boundary. */
export function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

/** Header and padded data of one entry; the size field is the data's length unless given. */
export function entry(f: HeaderFields, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([ustarHeader({ size: data.length, ...f }), padded(data)]);
}

export const fileEntry = (name: string | Buffer, data: Buffer) => entry({ name, type: '0' }, data);
export const dirEntry = (name: string) => entry({ name, type: '5' });

/** A PAX extended header whose records apply to the next entry. */
export function paxEntry(records: Record<string, string>): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
    body += `${len}${rest}`;
  }
  return entry({ name: 'PaxHeaders/x', type: 'x' }, Buffer.from(body, 'utf8'));
}

/** A GNU long-name entry: the next entry's real name. */
export function gnuLongNameEntry(name: string): Buffer {
  return entry({ name: '././@LongLink', type: 'L' }, Buffer.from(`${name}\0`, 'utf8'));
}

/** The entry at `offset` of an archive, found by block arithmetic alone (no PAX or long names). */
export interface RawEntry {
  name: string;
  type: string;
  offset: number;
  size: number;
  header: Buffer;
  data: Buffer;
  /** Header, data and padding: the entry's bytes exactly as stored. */
  raw: Buffer;
}

/** Splits an archive into its entries, up to the first zero block. */
export function splitTar(buf: Buffer): RawEntry[] {
  const out: RawEntry[] = [];
  for (let off = 0; off + BLOCK <= buf.length;) {
    const header = buf.subarray(off, off + BLOCK);
    if (header.every((b) => b === 0)) break;
    const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    const end = off + BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    out.push({
      name,
      type: String.fromCharCode(header[156]!),
      offset: off,
      size,
      header,
      data: buf.subarray(off + BLOCK, off + BLOCK + size),
      raw: buf.subarray(off, end),
    });
    off = end;
  }
  return out;
}

/** A copy of an entry with other data: same header fields, size and checksum updated. */
export function withData(e: RawEntry, data: Buffer): Buffer {
  const h = Buffer.from(e.header);
  h.write(octal(data.length, 12), 124, 'latin1');
  return Buffer.concat([setChecksum(h), padded(data)]);
}

/** A copy of an entry's header under another name (same data). */
export function renamed(e: RawEntry, name: string): Buffer {
  const h = Buffer.from(e.header);
  h.fill(0, 0, 100);
  Buffer.from(name, 'utf8').copy(h, 0, 0, 100);
  return Buffer.concat([setChecksum(h), padded(Buffer.from(e.data))]);
}

/**
 * Writes an archive to disk in large chunks, hashing it on the way (for its
 * sidecar): big archives are never held in memory whole.
 */
export class TarFile {
  private readonly fd: number;
  private readonly hash: Hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytes = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }

  add(...parts: Buffer[]): this {
    for (const p of parts) {
      this.pending.push(p);
      this.pendingBytes += p.length;
    }
    if (this.pendingBytes >= 8 << 20) this.flush();
    return this;
  }

  /**
   * `count` empty regular files named by `nameOf(i)` (each name at most 100
   * bytes), built from one header template with the checksum adjusted per name.
   */
  addEmptyFiles(count: number, nameOf: (i: number) => string): this {
    const template = ustarHeader({ name: '', type: '0', size: 0 });
    template.fill(0x20, 148, 156);
    let base = 0;
    for (const b of template) base += b;
    const perChunk = 16_384;
    for (let start = 0; start < count; start += perChunk) {
      const n = Math.min(perChunk, count - start);
      const chunk = Buffer.alloc(n * BLOCK);
      for (let j = 0; j < n; j++) {
        const off = j * BLOCK;
        template.copy(chunk, off);
        const name = nameOf(start + j);
        const len = chunk.write(name, off, 100, 'latin1');
        let sum = base;
        for (let k = 0; k < len; k++) sum += chunk[off + k]!;
        chunk.write(`${sum.toString(8).padStart(6, '0')}\0 `, off + 148, 8, 'latin1');
      }
      this.add(chunk);
    }
    return this;
  }

  /** Flushes, closes, and returns the sha256 (hex) of every byte written. */
  close(): string {
    this.flush();
    closeSync(this.fd);
    return this.hash.digest('hex');
  }

  private flush(): void {
    for (const p of this.pending) {
      this.hash.update(p);
      for (let off = 0; off < p.length;) off += writeSync(this.fd, p, off, p.length - off);
      this.bytes += p.length;
    }
    this.pending = [];
    this.pendingBytes = 0;
  }
}
