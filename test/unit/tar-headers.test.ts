// The bundle writer puts every name and size in the entry's own ustar header, and the reader
// refuses every header kind that would change how the next entry is read (PAX, GNU long names,
// sparse files): those are the headers tar readers disagree about, so a bundle never holds one.
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endOfArchive, fileEntry } from '../../src/tar/entries.js';
import { TarFormatError, TarReader } from '../../src/tar/reader.js';
import { tempDir } from '../helpers/cli.js';
import { BLOCK, END_OF_ARCHIVE, ustarHeader } from '../helpers/raw-tar.js';

const GiB = 1024 ** 3;
const stamp = { mtime: new Date(0) };

async function entriesOf(file: string): Promise<Array<{ path: string; size: number }>> {
  const tar = await TarReader.open(file);
  const out: Array<{ path: string; size: number }> = [];
  try {
    for await (const e of tar.entries()) out.push({ path: e.path, size: e.size });
  } finally {
    await tar.close();
  }
  return out;
}

describe('tar headers of a bundle', () => {
  let work: { path: string; remove: () => Promise<void> };
  beforeAll(async () => {
    work = await tempDir();
  });
  afterAll(() => work.remove());

  it('writes a blob past 8 GiB with its size in the header itself (base-256), no extended header, and reads it back', async () => {
    const size = 9 * GiB + 3;
    const name = `blobs/sha256/${'a'.repeat(64)}`;
    const parts = [...fileEntry(name, '/unused', size, stamp)];
    const header = parts[0] as Buffer;
    expect(Buffer.isBuffer(header) && header.length).toBe(BLOCK);
    expect(parts[1]).toMatchObject({ size });
    // The file is sparse: the header, a hole as long as the entry and its padding, the end marker.
    const path = join(work.path, 'big.tar');
    const fh = await open(path, 'w');
    try {
      await fh.write(header, 0, BLOCK, 0);
      const end = BLOCK + size + ((BLOCK - (size % BLOCK)) % BLOCK);
      await fh.write(endOfArchive(), 0, 2 * BLOCK, end);
    } finally {
      await fh.close();
    }
    expect(await entriesOf(path)).toEqual([{ path: name, size }]);
  });

  it('gives only a name too long for the ustar fields a PAX header (image-cache trees; bundle names never are)', () => {
    const long = [...fileEntry(`manifests/${'x'.repeat(200)}`, '/unused', 1, stamp)];
    expect(long.filter(Buffer.isBuffer).map((b) => b.length)).toEqual([2 * BLOCK, BLOCK, BLOCK - 1]);
    expect((long[0] as Buffer).toString('latin1', 156, 157)).toBe('x');
    const short = [...fileEntry(`blobs/sha256/${'b'.repeat(64)}`, '/unused', 10 * GiB, stamp)];
    expect(short.filter(Buffer.isBuffer).map((b) => b.length)).toEqual([BLOCK]);
  });

  for (const [type, kind] of [
    ['x', /PAX extended header/],
    ['g', /PAX global extended header/],
    ['L', /GNU long-name header/],
    ['K', /GNU long-link header/],
    ['S', /GNU sparse file/],
  ] as const) {
    it(`refuses a '${type}' header at once, naming it and where it is`, async () => {
      const body = Buffer.alloc(BLOCK, 0x20);
      const path = join(work.path, `ext-${type}.tar`);
      await writeFile(
        path,
        Buffer.concat([
          ustarHeader({ name: 'first', size: 0, type: '0' }),
          ustarHeader({ name: 'PaxHeader/evil', size: body.length, type }),
          body,
          ustarHeader({ name: 'x', size: 0, type: '0' }),
          END_OF_ARCHIVE,
        ]),
      );
      const err = await entriesOf(path).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TarFormatError);
      expect((err as Error).message).toMatch(kind);
      expect((err as Error).message).toMatch(/"PaxHeader\/evil" at offset 512/);
    });
  }
});
