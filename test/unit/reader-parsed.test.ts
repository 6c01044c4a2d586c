import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetadata, readParsedMetadata } from '../../src/bundle/reader.js';
import { scanFile } from '../../src/bundle/open/scan.js';
import { tempDir } from '../helpers/cli.js';
import { writeTinyBundle } from '../helpers/tiny-bundle.js';

let work: { path: string; remove: () => Promise<void> };
let one: string;
let other: string;

beforeAll(async () => {
  work = await tempDir('airgap-reader-parsed-');
  one = join(work.path, 'one.tar');
  other = join(work.path, 'other.tar');
  await writeTinyBundle(join(work.path, 'w1'), one, 1);
  await writeTinyBundle(join(work.path, 'w2'), other, 2);
});

afterAll(() => work.remove());

describe('bundle reader: metadata parsed by an earlier read', () => {
  it('is taken again when the file still holds the same bytes', async () => {
    const parsed = await readParsedMetadata(one);
    const scan = await scanFile(one, { read: 'every-blob', parsed });
    expect(scan.metadata).toBe(parsed.metadata);
    expect(scan.altered).toEqual([]);
    expect(scan.unreadable).toBeUndefined();
  });

  it('is not taken when the bytes differ (the file changed since): the metadata is parsed from what is there', async () => {
    const stale = await readParsedMetadata(one);
    const scan = await scanFile(other, { read: 'every-blob', parsed: stale });
    expect(scan.metadata).not.toBe(stale.metadata);
    expect(scan.metadata).toEqual(await readMetadata(other));
    expect(scan.metadata).not.toEqual(stale.metadata);
  });
});
