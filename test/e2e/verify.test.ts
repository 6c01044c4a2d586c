import { copyFileSync, readFileSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { MAX_INDEX_BYTES, MAX_METADATA_BYTES, type BundleMetadata } from '../../src/bundle/format.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { editTar, readTar, type TarEntry } from '../helpers/tar-edit.js';

let upstream: RunningRegistry;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
let bundle: string;
let meta: BundleMetadata;

beforeAll(async () => {
  work = await tempDir();
  upstream = await startRegistry();
  images = await generateSampleImages(join(work.path, 'samples'));
  await seedRegistry(upstream, images);
  bundle = join(work.path, 'good.tar');
  const refs = images.slice(0, 5).map((i) => `${upstream.host}/${i.repository}:${i.tag}`);
  const res = await runCli([
    'export',
    ...refs,
    '-o',
    bundle,
    '--plain-http',
    '--cache-dir',
    join(work.path, 'cache'),
    '-q',
  ]);
  expect(res.code).toBe(0);
  meta = JSON.parse(readTar(bundle)[0]!.data.toString()) as BundleMetadata;
});

afterAll(async () => {
  await upstream?.stop();
  await work?.remove();
});

/** A layer used by exactly one image, so damage to it breaks that image alone. */
function privateLayer(): { digest: string; owner: string } {
  for (const b of meta.blobs.filter((x) => x.role === 'layer')) {
    const owners = meta.images.filter((i) => i.blobs.includes(b.digest));
    if (owners.length === 1) return { digest: b.digest, owner: owners[0]!.reference };
  }
  throw new Error('no private layer in the sample set');
}

const entryOf = (digest: string) => (e: TarEntry) => e.path === `blobs/sha256/${digest.slice(7)}`;

async function verifyJson(file: string) {
  const res = await runCli(['verify', file, '--json']);
  return { ...res, report: res.stdout ? JSON.parse(res.stdout) : undefined };
}

describe('verify', () => {
  it('passes an intact bundle with its sidecar', async () => {
    const res = await runCli(['verify', bundle]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain('checksum sidecar: matches');
    expect(res.stderr).toContain('bundle intact');
  });

  it('names a flipped byte in a layer, the image it breaks, and keeps the others intact', async () => {
    const { digest, owner } = privateLayer();
    const bad = join(work.path, 'flip.tar');
    editTar(bundle, bad, (es) => {
      const e = es.find(entryOf(digest))!;
      e.data = Buffer.from(e.data);
      e.data[Math.floor(e.data.length / 2)]! ^= 0xff;
      return es;
    });
    const { code, report } = await verifyJson(bad);
    expect(code).toBe(3);
    const broken = report.images.filter((i: { status: string }) => i.status !== 'intact');
    expect(broken.map((i: { reference: string }) => i.reference)).toEqual([owner]);
    expect(broken[0].status).toBe('damaged');
    expect(broken[0].problems.join('\n')).toContain(digest);
    expect(report.images.filter((i: { status: string }) => i.status === 'intact')).toHaveLength(meta.images.length - 1);
    const human = await runCli(['verify', bad]);
    expect(human.stderr).toContain(`the other ${meta.images.length - 1} are intact`);
  });

  it('reports a dropped blob as incomplete', async () => {
    const { digest, owner } = privateLayer();
    const bad = join(work.path, 'drop.tar');
    editTar(bundle, bad, (es) => es.filter((e) => !entryOf(digest)(e)));
    const { code, report } = await verifyJson(bad);
    expect(code).toBe(3);
    const img = report.images.find((i: { reference: string }) => i.reference === owner);
    expect(img.status).toBe('incomplete');
    expect(img.problems.join()).toContain(`${digest} is missing`);
    expect(report.blobs.missing).toBe(1);
  });

  it('detects a truncated archive and still reports the images read before the cut', async () => {
    const bad = join(work.path, 'trunc.tar');
    copyFileSync(bundle, bad);
    truncateSync(bad, Math.floor(statSync(bundle).size * 0.6));
    const { code, report } = await verifyJson(bad);
    expect(code).toBe(3);
    expect(report.problems.join()).toMatch(/truncated/);
    expect(report.images.length).toBe(meta.images.length);
  });

  it('reports a wrong sidecar yet checks every blob', async () => {
    const bad = join(work.path, 'sidecar.tar');
    copyFileSync(bundle, bad);
    writeFileSync(`${bad}.sha256`, `${'0'.repeat(64)}  sidecar.tar\n`);
    const { code, report } = await verifyJson(bad);
    expect(code).toBe(3);
    expect(report.sidecar.status).toBe('mismatch');
    expect(report.blobs.verified).toBe(meta.blobs.length);
    expect(report.images.every((i: { status: string }) => i.status === 'intact')).toBe(true);
  });

  it('catches an index.json that disagrees with the metadata', async () => {
    const bad = join(work.path, 'index.tar');
    editTar(bundle, bad, (es) => {
      const e = es.find((x) => x.path === 'index.json')!;
      const idx = JSON.parse(e.data.toString());
      idx.manifests[0].digest = `sha256:${'1'.repeat(64)}`;
      e.data = Buffer.from(JSON.stringify(idx));
      return es;
    });
    const { code, report } = await verifyJson(bad);
    expect(code).toBe(3);
    expect(report.problems.join()).toMatch(/index\.json entry for .* differs/);
  });

  it.each([
    [
      '../evil',
      (es: TarEntry[]) => [
        ...es.slice(0, 3),
        { path: '../evil', type: 'File' as const, data: Buffer.from('x') },
        ...es.slice(3),
      ],
      /"\.\.\/evil" refused: path with "\.\."/,
    ],
    [
      '/etc/passwd',
      (es: TarEntry[]) => [...es, { path: '/etc/passwd', type: 'File' as const, data: Buffer.from('x') }],
      /absolute path/,
    ],
    [
      'a symlink',
      (es: TarEntry[]) => [
        ...es,
        {
          path: `blobs/sha256/${'2'.repeat(64)}`,
          type: 'SymbolicLink' as const,
          data: Buffer.alloc(0),
          linkpath: '/etc/shadow',
        },
      ],
      /SymbolicLink/,
    ],
    [
      'a hard link',
      (es: TarEntry[]) => [
        ...es,
        {
          path: `blobs/sha256/${'3'.repeat(64)}`,
          type: 'Link' as const,
          data: Buffer.alloc(0),
          linkpath: 'index.json',
        },
      ],
      /Link/,
    ],
    [
      'a stray file',
      (es: TarEntry[]) => [...es, { path: 'run.sh', type: 'File' as const, data: Buffer.from('x') }],
      /not part of an OCI image layout/,
    ],
    [
      'an uppercase digest',
      (es: TarEntry[]) => [
        ...es,
        { path: `blobs/sha256/${'A'.repeat(64)}`, type: 'File' as const, data: Buffer.from('x') },
      ],
      /lowercase hex/,
    ],
    [
      'an unsupported algorithm',
      (es: TarEntry[]) => [
        ...es,
        { path: `blobs/md5/${'a'.repeat(32)}`, type: 'File' as const, data: Buffer.from('x') },
      ],
      /unsupported digest algorithm/,
    ],
    [
      'a duplicate entry',
      (es: TarEntry[]) => [...es, { ...es.find((e) => e.path === 'index.json')! }],
      /appears twice/,
    ],
    [
      'an oversized index.json',
      (es: TarEntry[]) =>
        es.map((e) =>
          e.path === 'index.json' ? { ...e, data: Buffer.alloc(MAX_INDEX_BYTES + 1024 * 1024, 0x20) } : e,
        ),
      /limit/,
    ],
  ])('refuses %s with exit 3 and keeps reporting the images', async (_name, edit, message) => {
    const bad = join(work.path, `hostile-${Math.random().toString(36).slice(2)}.tar`);
    editTar(bundle, bad, edit);
    const res = await runCli(['verify', bad]);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const { report } = await verifyJson(bad);
    expect(report.images.length).toBe(meta.images.length);
  });

  it('refuses oversized metadata, compressed input and non-tar files without a stack trace', async () => {
    const big = join(work.path, 'bigmeta.tar');
    editTar(bundle, big, (es) => [
      { path: 'airgap-bundle.json', type: 'File', data: Buffer.alloc(MAX_METADATA_BYTES + 1024 * 1024, 0x20) },
      ...es.slice(1),
    ]);
    const gz = join(work.path, 'bundle.tar.gz');
    writeFileSync(gz, gzipSync(readFileSync(bundle)));
    const junk = join(work.path, 'junk.tar');
    writeFileSync(junk, Buffer.alloc(4096, 0x41));
    for (const [file, message] of [
      [big, /limit/],
      [gz, /gzip-compressed/],
      [junk, /not a valid tar|not an airgap-bundle/],
    ] as const) {
      const res = await runCli(['verify', file]);
      expect(res.code, file).toBe(3);
      expect(res.stderr).toMatch(message);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('inspect', () => {
  it('lists images, platforms and sizes from the metadata alone', async () => {
    const res = await runCli(['inspect', bundle, '--json']);
    expect(res.code).toBe(0);
    const s = JSON.parse(res.stdout);
    expect(s.images.map((i: { reference: string }) => i.reference).sort()).toEqual(
      meta.images.map((i) => i.reference).sort(),
    );
    expect(s.totalBytes).toBe(meta.blobs.reduce((n, b) => n + b.size, 0));
    expect(s.formatVersion).toBe(1);
    const human = await runCli(['inspect', bundle]);
    expect(human.stdout).toContain('linux/amd64');
    expect(human.stdout).toMatch(/saved by shared layers/);
  });

  it('reads only the metadata: a bundle cut right after it still inspects', async () => {
    const cut = join(work.path, 'cut.tar');
    copyFileSync(bundle, cut);
    const metaEntry = readTar(bundle)[0]!;
    truncateSync(cut, 512 + Math.ceil(metaEntry.data.length / 512) * 512 + 512);
    const res = await runCli(['inspect', cut, '--json']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).images).toHaveLength(meta.images.length);
  });
});
