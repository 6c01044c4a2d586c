// The end of a tar archive is two zero blocks and nothing but zero padding after them. Readers
// disagree about a lone zero block (GNU tar stops, others read on), so entries hidden behind one
// could be seen by some readers and not by others: the reader refuses such an archive.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TarFormatError, TarReader } from '../../src/tar/reader.js';
import { tempDir } from '../helpers/cli.js';
import { END_OF_ARCHIVE, ustarHeader, BLOCK } from '../helpers/raw-tar.js';

function entry(name: string, data: Buffer): Buffer {
  const pad = Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK);
  return Buffer.concat([ustarHeader({ name, size: data.length, type: '0' }), data, pad]);
}

async function names(file: string): Promise<string[]> {
  const tar = await TarReader.open(file);
  const out: string[] = [];
  try {
    for await (const e of tar.entries()) out.push(e.path);
  } finally {
    await tar.close();
  }
  return out;
}

describe('end of archive', () => {
  let work: { path: string; remove: () => Promise<void> };
  const file = (name: string, bytes: Buffer) => {
    const path = join(work.path, name);
    writeFileSync(path, bytes);
    return path;
  };
  beforeAll(async () => {
    work = await tempDir();
  });
  afterAll(() => work.remove());

  const a = () => entry('a', Buffer.from('first'));
  const hidden = () => entry('b', Buffer.from('smuggled'));

  it('reads a well-formed archive, with record padding after the marker', async () => {
    expect(await names(file('ok.tar', Buffer.concat([a(), END_OF_ARCHIVE])))).toEqual(['a']);
    expect(await names(file('padded.tar', Buffer.concat([a(), END_OF_ARCHIVE, Buffer.alloc(9 * BLOCK)])))).toEqual([
      'a',
    ]);
  });

  it.each([
    [
      'a lone zero block followed by another entry',
      () => Buffer.concat([a(), Buffer.alloc(BLOCK), hidden(), END_OF_ARCHIVE]),
      /lone zero block/,
    ],
    [
      'data after the end-of-archive marker',
      () => Buffer.concat([a(), END_OF_ARCHIVE, hidden(), END_OF_ARCHIVE]),
      /follows the end of the archive/,
    ],
    [
      'more than 1 MiB after the marker',
      () => Buffer.concat([a(), END_OF_ARCHIVE, Buffer.alloc((1 << 20) + BLOCK)]),
      /bytes follow the end of the archive/,
    ],
    ['a single zero block at the end', () => Buffer.concat([a(), Buffer.alloc(BLOCK)]), /truncated/],
  ])('refuses %s', async (name, build, message) => {
    const path = file(`${name.replace(/\W/g, '_')}.tar`, build());
    await expect(names(path)).rejects.toThrow(TarFormatError);
    await expect(names(path)).rejects.toThrow(message);
  });
});
