// Entries nobody reads are skipped by seeking. Finding the next header after a seek must not read
// a whole window of the entry that follows it (nor a read-ahead window after that): on a bundle of
// large layers that read most of the file just to walk its headers.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TarReader } from '../../src/tar/reader.js';
import { tempDir } from '../helpers/cli.js';
import { END_OF_ARCHIVE, ustarHeader } from '../helpers/raw-tar.js';

const MiB = 1024 * 1024;

describe('tar reader, skipping', () => {
  let work: { path: string; remove: () => Promise<void> };
  beforeAll(async () => {
    work = await tempDir();
  });
  afterAll(() => work.remove());

  it('walks the headers of large entries reading little more than the headers', async () => {
    const big = Buffer.alloc(16 * MiB, 7);
    const entries = Array.from({ length: 6 }, (_, i) => [
      ustarHeader({ name: `layer-${i}`, size: big.length, type: '0' }),
      big,
    ]).flat();
    const file = join(work.path, 'layers.tar');
    writeFileSync(file, Buffer.concat([...entries, END_OF_ARCHIVE]));
    const tar = await TarReader.open(file);
    const names: string[] = [];
    try {
      for await (const e of tar.entries()) names.push(e.path);
      expect(names).toEqual(['layer-0', 'layer-1', 'layer-2', 'layer-3', 'layer-4', 'layer-5']);
      // The file is 96 MiB. Read: the first window and its read-ahead (8 MiB), then after each
      // seek a small read and a small read-ahead. Whole windows after each seek read all 96 MiB.
      expect(tar.bytesRead).toBeLessThan(12 * MiB);
    } finally {
      await tar.close();
    }
  });

  it('reads an entry after a seek whole, however it straddles the growing reads', async () => {
    const skipped = Buffer.alloc(9 * MiB, 1);
    const read = Buffer.from(Array.from({ length: 5 * MiB + 333 }, (_, i) => (i * 31) % 251));
    const file = join(work.path, 'mixed.tar');
    const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
    writeFileSync(
      file,
      Buffer.concat([
        ustarHeader({ name: 'skipped', size: skipped.length, type: '0' }),
        skipped,
        ustarHeader({ name: 'read', size: read.length, type: '0' }),
        read,
        pad(read.length),
        END_OF_ARCHIVE,
      ]),
    );
    const tar = await TarReader.open(file);
    try {
      for await (const e of tar.entries()) {
        if (e.path !== 'read') continue;
        const parts: Buffer[] = [];
        for await (const chunk of tar.data(e)) parts.push(Buffer.from(chunk));
        expect(Buffer.concat(parts).equals(read)).toBe(true);
      }
    } finally {
      await tar.close();
    }
  });
});
