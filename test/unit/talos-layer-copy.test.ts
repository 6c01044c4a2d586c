// The oci layer copy (src/talos-cache/layer-copy.ts): bytes read by offset into
// a shared ring, written out, every blob checked on one thread and the layer
// hashed on another. Real files, real worker threads; sizes chosen to cross
// slot boundaries (slots are 2 MiB) and to cut blobs into parts.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobSpan } from '../../src/talos-cache/blob-check.js';
import { copyLayer } from '../../src/talos-cache/layer-copy.js';
import { tempDir } from '../helpers/cli.js';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
let work: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => (work = await tempDir('layer-copy-')));
afterAll(() => work.remove());

/** One "bundle" file holding `blobs` back to back, and a span for each. */
function bundleOf(name: string, blobs: Buffer[]): { path: string; spans: BlobSpan[] } {
  const path = join(work.path, name);
  writeFileSync(path, Buffer.concat(blobs));
  let offset = 0;
  const spans = blobs.map((b) => {
    const d = digestOf(b);
    const span = { digest: d, size: b.length, ranges: [{ path, offset, size: b.length, digest: d }] };
    offset += b.length;
    return span;
  });
  return { path, spans };
}

/** A blob cut in two parts, each a range with its own digest, the span named by the whole digest. */
function inParts(blob: Buffer, cut: number, path: string, offset: number): BlobSpan {
  const [a, b] = [blob.subarray(0, cut), blob.subarray(cut)];
  return {
    digest: digestOf(blob),
    size: blob.length,
    ranges: [
      { path, offset, size: a.length, digest: digestOf(a) },
      { path, offset: offset + a.length, size: b.length, digest: digestOf(b) },
    ],
  };
}

describe('talos-cache: the oci layer copy', () => {
  const big = randomBytes(5 * 1024 * 1024 + 17);
  const small = randomBytes(1000);
  const header = Buffer.alloc(512, 7);

  it('writes headers and blobs in order, and returns the digest and size of exactly those bytes', async () => {
    const { spans } = bundleOf('plain.tar', [big, small]);
    const out = join(work.path, 'plain.layer');
    let counted = 0;
    const got = await copyLayer(out, [header, spans[0]!, header, spans[1]!], (n) => (counted += n));
    const expected = Buffer.concat([header, big, header, small]);
    expect(readFileSync(out).equals(expected)).toBe(true);
    expect(got).toEqual({ digest: digestOf(expected), size: expected.length });
    expect(counted).toBe(expected.length);
  });

  it('checks a blob in parts part by part and whole', async () => {
    const path = join(work.path, 'parts.tar');
    writeFileSync(path, big);
    const out = join(work.path, 'parts.layer');
    const got = await copyLayer(out, [header, inParts(big, 3 * 1024 * 1024 + 5, path, 0)], () => {});
    expect(got.digest).toBe(digestOf(Buffer.concat([header, big])));
  });

  it('names the damaged blob, and the damaged part of a blob in parts', async () => {
    const damaged = Buffer.from(big);
    damaged.writeUInt8(damaged.readUInt8(4 * 1024 * 1024) ^ 1, 4 * 1024 * 1024);
    const { path, spans } = bundleOf('damaged.tar', [small, damaged]);
    const lying = { ...spans[1]!, digest: digestOf(big), ranges: [{ ...spans[1]!.ranges[0]!, digest: digestOf(big) }] };
    await expect(copyLayer(join(work.path, 'd1.layer'), [spans[0]!, lying], () => {})).rejects.toThrow(
      `blob ${digestOf(big)} does not match`,
    );

    const parts = inParts(big, 3 * 1024 * 1024, path, small.length);
    await expect(copyLayer(join(work.path, 'd2.layer'), [parts], () => {})).rejects.toThrow(
      `blob ${parts.ranges[1]!.digest} does not match`,
    );
  });

  it('names the whole blob when every part matches but the whole does not', async () => {
    const path = join(work.path, 'whole.tar');
    writeFileSync(path, big);
    const parts = { ...inParts(big, 1024 * 1024, path, 0), digest: digestOf(small) };
    await expect(copyLayer(join(work.path, 'w.layer'), [parts], () => {})).rejects.toThrow(
      `blob ${digestOf(small)} does not match`,
    );
  });

  it('refuses a bundle file shorter than its index says', async () => {
    const { spans } = bundleOf('short.tar', [small]);
    const beyond = { ...spans[0]!, ranges: [{ ...spans[0]!.ranges[0]!, offset: 500 }] };
    const out = join(work.path, 'short.layer');
    await expect(copyLayer(out, [beyond], () => {})).rejects.toThrow('is damaged');
  });
});
