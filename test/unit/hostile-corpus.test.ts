// The hostile corpus is only as good as its crafting: a case meant to test one bound must be
// consistent everywhere else, or a command may refuse it for the wrong reason (a digest that does
// not match) and the test would pass while the bound goes unchecked.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMetadata } from '../../src/bundle/metadata.js';
import { tempDir } from '../helpers/cli.js';
import { hostileCases, makeSample, type HostileCase, type Sample } from '../helpers/hostile-bundles.js';
import { splitTar, type RawEntry } from '../helpers/raw-tar.js';

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

let work: { path: string; remove: () => Promise<void> };
let sample: Sample;
let cases: HostileCase[];

beforeAll(async () => {
  work = await tempDir('airgap-corpus-');
  sample = await makeSample(join(work.path, 'sample'));
  cases = hostileCases(sample, 'corpus-marker');
});
afterAll(() => work?.remove());

function build(id: string): { bytes: Buffer; entries: RawEntry[]; sidecar: string } {
  const c = cases.find((x) => x.id === id);
  if (!c) throw new Error(`no case ${id}`);
  const dir = join(work.path, id);
  mkdirSync(dir);
  const { bundle } = c.build(dir);
  const bytes = readFileSync(bundle);
  return { bytes, entries: splitTar(bytes), sidecar: readFileSync(`${bundle}.sha256`, 'utf8') };
}

/** What would make a command refuse the bundle for a reason other than the attack: none of it may hold. */
function inconsistencies(bytes: Buffer, entries: RawEntry[], sidecar: string): string[] {
  const problems: string[] = [];
  if (sidecar !== `${hex(bytes)}  b.tar\n`) problems.push('the sidecar does not match the bundle');
  const blobs = new Map<string, Buffer>();
  for (const e of entries.filter((x) => x.name.startsWith('blobs/sha256/') && x.type === '0')) {
    const name = e.name.slice('blobs/sha256/'.length);
    if (hex(e.data) !== name) problems.push(`blob ${name} holds bytes of digest ${hex(e.data)}`);
    blobs.set(`sha256:${name}`, e.data);
  }
  const meta = parseMetadata(entries.find((e) => e.name === 'airgap-bundle.json')!.data);
  for (const b of meta.blobs) {
    const data = blobs.get(b.digest);
    if (!data) problems.push(`metadata lists ${b.digest}, which the tar does not hold`);
    else if (data.length !== b.size)
      problems.push(`metadata gives ${b.digest} ${b.size} bytes, it holds ${data.length}`);
  }
  const index = JSON.parse(entries.find((e) => e.name === 'index.json')!.data.toString('utf8')) as {
    manifests: Array<{ digest: string; size: number }>;
  };
  for (const im of meta.images) {
    const listed = index.manifests.find((m) => m.digest === im.digest);
    if (!listed || listed.size !== im.size)
      problems.push(`index.json does not list ${im.reference} as the metadata does`);
    for (const d of im.blobs)
      if (!blobs.has(d)) problems.push(`${im.reference} needs ${d}, which the tar does not hold`);
  }
  return problems;
}

describe('the hostile corpus is crafted consistently', () => {
  it('the consistency check finds a blob whose bytes do not match its digest (the bit-rot case)', () => {
    const { bytes, entries, sidecar } = build('bit-rot-one-layer');
    expect(inconsistencies(bytes, entries, sidecar)).toEqual([
      'the sidecar does not match the bundle',
      expect.stringContaining(`blob ${sample.toolLayer.digest.slice(7)} holds bytes of digest`),
    ]);
  });

  it('layers-25000: one manifest of 25,000 layers under the 4 MiB cap, every digest, size and listing matching', () => {
    const { bytes, entries, sidecar } = build('layers-25000');
    expect(inconsistencies(bytes, entries, sidecar)).toEqual([]);
    const meta = parseMetadata(entries[0]!.data);
    const tool = meta.images.find((i) => i.repository === 'fuzz/tool')!;
    expect(tool.digest).not.toBe(sample.tool.digest);
    const manifest = entries.find((e) => e.name === `blobs/sha256/${tool.digest.slice(7)}`)!.data;
    expect(manifest.length).toBeLessThan(4 * MiB);
    const doc = JSON.parse(manifest.toString('utf8')) as { layers: Array<{ digest: string }> };
    expect(doc.layers).toHaveLength(25_000);
    expect(new Set(doc.layers.map((l) => l.digest))).toEqual(new Set([sample.toolLayer.digest]));
    // The app image is untouched: only the tool's manifest was rebuilt.
    expect(meta.images.find((i) => i.repository === 'fuzz/app')).toEqual(sample.app);
  });

  it('pax-chain-100000: 100,000 PAX headers of 1 KiB, no path override, then the sample entry for entry', () => {
    const { bytes, entries, sidecar } = build('pax-chain-100000');
    expect(inconsistencies(bytes, entries, sidecar)).toEqual([]);
    const pax = entries.filter((e) => e.type === 'x');
    expect(pax).toHaveLength(100_000);
    for (const e of [pax[0]!, pax[pax.length - 1]!]) {
      expect(e.raw.length).toBe(1024);
      expect(e.data.toString('utf8')).toMatch(/^\d+ comment=c+\n$/);
    }
    const first = entries.findIndex((e) => e.type === 'x');
    expect(entries[first + 100_000]!.name).toMatch(/^blobs\/sha256\//);
    const rest = entries.filter((e) => e.type !== 'x').map((e) => e.raw);
    expect(Buffer.concat(rest).equals(Buffer.concat(sample.entries.map((e) => e.raw)))).toBe(true);
  });
});
