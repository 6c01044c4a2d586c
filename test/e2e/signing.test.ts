import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { editTar, type TarEntry } from '../helpers/tar-edit.js';
import { sha256Digest } from '../../scripts/lib/digest.js';

let upstream: RunningRegistry;
let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
let signed: string;
let unsigned: string;
let key: string;
let pub: string;

beforeAll(async () => {
  work = await tempDir();
  upstream = await startRegistry();
  images = (await generateSampleImages(join(work.path, 'samples'))).slice(0, 3);
  await seedRegistry(upstream, images);
  const prefix = join(work.path, 'release');
  const kg = await runCli(['keygen', '-o', prefix]);
  expect(kg.code).toBe(0);
  key = `${prefix}.key`;
  pub = `${prefix}.pub`;
  const refs = images.map((i) => `${upstream.host}/${i.repository}:${i.tag}`);
  signed = join(work.path, 'signed.tar');
  unsigned = join(work.path, 'unsigned.tar');
  const cache = join(work.path, 'cache');
  expect(
    (await runCli(['export', ...refs, '-o', signed, '--sign-key', key, '--plain-http', '--cache-dir', cache, '-q']))
      .code,
  ).toBe(0);
  expect((await runCli(['export', ...refs, '-o', unsigned, '--plain-http', '--cache-dir', cache, '-q'])).code).toBe(0);
});

afterAll(async () => {
  await upstream?.stop();
  await work?.remove();
});

const editMetadata = (src: string, dst: string, edit: (meta: string, entries: TarEntry[]) => string) =>
  editTar(src, dst, (es) => {
    const m = es.find((e) => e.path === 'airgap-bundle.json')!;
    m.data = Buffer.from(edit(m.data.toString('utf8'), es));
    return es;
  });

describe('bundle signatures', () => {
  it('keygen writes the private key with mode 0600', () => {
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(execFileSync('openssl', ['pkey', '-pubin', '-in', pub, '-noout', '-text']).toString()).toMatch(/ED25519/);
  });

  it('a signed bundle verifies with its public key; the signature is also beside it', async () => {
    expect(existsSync(`${signed}.sig`)).toBe(true);
    const res = await runCli(['verify', signed, '--public-key', pub]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/signature valid/);
  });

  it('refuses an unsigned bundle when a key is required (exit 4), before anything is pushed', async () => {
    const v = await runCli(['verify', unsigned, '--public-key', pub]);
    expect(v.code).toBe(4);
    expect(v.stderr).toMatch(/signature missing: the bundle is not signed/);
    const dest = await startRegistry();
    try {
      const imp = await runCli(['import', unsigned, '--registry', dest.host, '--plain-http', '--public-key', pub]);
      expect(imp.code).toBe(4);
      expect(JSON.parse(execFileSync('curl', ['-s', `${dest.url}/v2/_catalog`]).toString()).repositories).toEqual([]);
    } finally {
      await dest.stop();
    }
  });

  it('detects one byte of metadata changed', async () => {
    const bad = join(work.path, 'meta-byte.tar');
    editMetadata(signed, bad, (m) => m.replace('"airgap-bundle"', '"airgap-bundlf"'));
    const res = await runCli(['verify', bad, '--public-key', pub]);
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/changed after signing/);
  });

  it('detects a blob swapped for another with a matching metadata edit', async () => {
    const bad = join(work.path, 'swapped.tar');
    editMetadata(signed, bad, (m, es) => {
      const meta = JSON.parse(m);
      const layer = meta.blobs.find((b: { role: string }) => b.role === 'layer');
      const entry = es.find((e) => e.path === `blobs/sha256/${layer.digest.slice(7)}`)!;
      entry.data = Buffer.from('evil layer');
      const digest = sha256Digest(entry.data);
      entry.path = `blobs/sha256/${digest.slice(7)}`;
      const text = m.split(layer.digest).join(digest);
      return text.replace(`"size": ${layer.size},`, `"size": ${entry.data.length},`);
    });
    const res = await runCli(['verify', bad, '--public-key', pub]);
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/changed after signing/);
  });

  it('refuses a bundle signed by another key', async () => {
    const other = join(work.path, 'other');
    expect((await runCli(['keygen', '-o', other])).code).toBe(0);
    const res = await runCli(['verify', signed, '--public-key', `${other}.pub`]);
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/signed by key sha256:[a-f0-9]{64}, not by the given key/);
  });

  it('imports a validly signed bundle', async () => {
    const dest = await startRegistry();
    try {
      const res = await runCli(['import', signed, '--registry', dest.host, '--plain-http', '--public-key', pub, '-q']);
      expect(res.code).toBe(0);
    } finally {
      await dest.stop();
    }
  });
});
