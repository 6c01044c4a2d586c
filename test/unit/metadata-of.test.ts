// metadataOf, the tests' one reader of a bundle's metadata: the document exactly as written,
// wherever in the tar it is, and a plain error for a tar without one.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { makeSample, type Sample } from '../helpers/hostile-bundles.js';
import { metadataOf } from '../helpers/metadata.js';
import { END_OF_ARCHIVE } from '../helpers/raw-tar.js';

let work: { path: string; remove: () => Promise<void> };
let sample: Sample;

beforeAll(async () => {
  work = await tempDir('airgap-metadata-of-');
  sample = await makeSample(work.path);
});
afterAll(() => work?.remove());

describe('metadataOf', () => {
  it('reads the metadata of a bundle as the writer wrote it', () => {
    expect(metadataOf(join(work.path, 'sample.tar'))).toEqual(sample.metadata);
  });

  it('finds the metadata behind other entries, and names a tar that holds none', () => {
    const last = join(work.path, 'last.tar');
    const raw = sample.entries.map((e) => e.raw);
    writeFileSync(last, Buffer.concat([...raw.slice(1), raw[0]!, END_OF_ARCHIVE]));
    expect(metadataOf(last)).toEqual(sample.metadata);
    const none = join(work.path, 'none.tar');
    writeFileSync(none, Buffer.concat([...raw.slice(1), END_OF_ARCHIVE]));
    expect(() => metadataOf(none)).toThrow(/holds no airgap-bundle\.json/);
  });
});
