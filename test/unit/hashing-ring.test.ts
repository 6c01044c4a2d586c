import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashingRing } from '../../src/util/hashing/hashing-ring.js';
import { tempDir } from '../helpers/cli.js';
import { sha256Digest, sha256Hex } from '../../scripts/lib/digest.js';

let work: { path: string; remove: () => Promise<void> };
beforeAll(async () => {
  work = await tempDir();
});
afterAll(async () => {
  await work?.remove();
});

describe('tar sink', () => {
  it('writes buffers and file ranges in order across slot boundaries, and hashes exactly what it wrote', async () => {
    const source = join(work.path, 'source');
    const data = randomBytes(5 * 1024 * 1024 + 123);
    writeFileSync(source, data);
    const out = join(work.path, 'out');
    let counted = 0;
    const sink = await HashingRing.toFile(out, (n) => (counted += n));
    const small = randomBytes(700);
    await sink.append(small);
    await sink.appendFile(source, 0, data.length);
    await sink.appendFile(source, 1000, 3 * 1024 * 1024);
    await sink.append(Buffer.alloc(0));
    await sink.appendFile(source, data.length - 10, 10);
    const expected = Buffer.concat([
      small,
      data,
      data.subarray(1000, 1000 + 3 * 1024 * 1024),
      data.subarray(data.length - 10),
    ]);
    expect(sink.bytes).toBe(expected.length);
    const digest = await sink.finish();
    expect(readFileSync(out).equals(expected)).toBe(true);
    expect(digest).toBe(sha256Hex(expected));
    expect(counted).toBe(expected.length);
  });

  it('refuses a range past the end of its file', async () => {
    const source = join(work.path, 'short');
    writeFileSync(source, randomBytes(1000));
    const sink = await HashingRing.toFile(join(work.path, 'out2'));
    await expect(sink.appendFile(source, 500, 1000)).rejects.toThrow(/changed while being archived/);
    await sink.close();
  });

  it('hashing only: checks each range on its own, and a range taken back leaves the whole hash as if it had never come', async () => {
    const good = join(work.path, 'good');
    const bad = join(work.path, 'bad');
    const data = randomBytes(2 * 1024 * 1024 + 77);
    const damaged = Buffer.from(data);
    damaged[12345] = damaged[12345]! ^ 1;
    writeFileSync(good, data);
    writeFileSync(bad, damaged);
    let counted = 0;
    const sink = HashingRing.inPlace((n) => (counted += n));
    const head = randomBytes(300);
    await sink.append(head);
    const sha = sha256Digest;
    const checked = async (path: string, size: number) => {
      const fh = await open(path, 'r');
      try {
        return await sink.appendRangeChecked(fh, path, 0, size);
      } finally {
        await fh.close();
      }
    };
    expect(await checked(bad, damaged.length)).toBe(sha(damaged));
    sink.unappend(damaged.length);
    expect(await checked(good, data.length)).toBe(sha(data));
    const tail = randomBytes(1000);
    await sink.append(tail);
    const expected = Buffer.concat([head, data, tail]);
    expect(sink.bytes).toBe(expected.length);
    expect(await sink.finish()).toBe(sha256Hex(expected));
    expect(counted).toBe(expected.length);
  });
});
