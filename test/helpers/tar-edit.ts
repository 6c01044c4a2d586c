import { readFileSync, writeFileSync } from 'node:fs';
import { Header, Parser, type ReadEntry } from 'tar';

/** One tar entry held in memory: test bundles are small, and damage is easier to write this way. */
export interface TarEntry {
  path: string;
  type: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO';
  data: Buffer;
  linkpath?: string;
}

export function readTar(file: string): TarEntry[] {
  const entries: TarEntry[] = [];
  const parser = new Parser({
    onReadEntry: (e: ReadEntry) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () =>
        entries.push({
          path: e.path,
          type: e.type as TarEntry['type'],
          data: Buffer.concat(chunks),
          ...(e.linkpath ? { linkpath: e.linkpath } : {}),
        }),
      );
    },
  });
  parser.end(readFileSync(file));
  return entries;
}

/** Writes entries as a ustar archive, headers encoded by node-tar, no normalisation of names. */
export function writeTar(file: string, entries: TarEntry[]): void {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const block = Buffer.alloc(512);
    new Header({
      path: e.path,
      type: e.type,
      size: e.type === 'File' ? e.data.length : 0,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
      ...(e.linkpath ? { linkpath: e.linkpath } : {}),
    }).encode(block, 0);
    parts.push(block);
    if (e.type === 'File' && e.data.length > 0) {
      parts.push(e.data);
      const pad = e.data.length % 512;
      if (pad) parts.push(Buffer.alloc(512 - pad));
    }
  }
  parts.push(Buffer.alloc(1024));
  writeFileSync(file, Buffer.concat(parts));
}

/** Copies a bundle with `edit` applied to its entry list. */
export function editTar(src: string, dst: string, edit: (entries: TarEntry[]) => TarEntry[]): void {
  writeTar(dst, edit(readTar(src)));
}
