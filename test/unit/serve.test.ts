import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRoute } from '../../src/serve/routes.js';
import { RegistryProblem } from '../../src/serve/errors.js';
import { parseRange } from '../../src/serve/range.js';
import { nextLink, pageOf } from '../../src/serve/pagination.js';
import { assembleUnits, ServeInputError } from '../../src/serve/units.js';
import { ServedContent } from '../../src/serve/content.js';
import { authorized } from '../../src/serve/auth.js';
import { tlsFromFolder, TLS_FILES } from '../../src/serve/tls.js';
import { parseListen } from '../../src/commands/serve.js';
import type { BundleMetadata, ImageRecord } from '../../src/bundle/format.js';
import type { CheckedFile } from '../../src/bundle/open/structure.js';
import { imageFixture, metadataFixture } from '../helpers/metadata.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;

function code(target: string): string {
  try {
    parseRoute(target);
    return 'ok';
  } catch (err) {
    return (err as RegistryProblem).code;
  }
}

describe('serve: request targets', () => {
  it('parses every read endpoint, with ns and paging', () => {
    expect(parseRoute('/v2/')).toEqual({ kind: 'base' });
    expect(parseRoute('/v2/_catalog?n=2&last=a')).toEqual({ kind: 'catalog', page: { n: 2, last: 'a' } });
    expect(parseRoute('/v2/a/b/tags/list')).toEqual({
      kind: 'tags',
      name: 'a/b',
      ns: undefined,
      page: { n: undefined, last: undefined },
    });
    expect(parseRoute('/v2/siderolabs/kubelet/manifests/v1.31.1?ns=ghcr.io')).toEqual({
      kind: 'manifest',
      name: 'siderolabs/kubelet',
      ns: 'ghcr.io',
      reference: { tag: 'v1.31.1' },
    });
    expect(parseRoute(`/v2/x/blobs/${D('a')}?ns=127.0.0.1:5000`)).toMatchObject({
      kind: 'blob',
      digest: D('a'),
      ns: '127.0.0.1:5000',
    });
    expect(parseRoute(`/v2/x/referrers/${D('b')}?artifactType=application/vnd.example+json`)).toMatchObject({
      kind: 'referrers',
      artifactType: 'application/vnd.example+json',
    });
    expect(parseRoute('/v2/x/blobs/uploads/')).toEqual({ kind: 'upload' });
  });

  it('refuses malformed names, digests, tags and parameters with the spec codes', () => {
    expect(code('/v2/../../etc/passwd/blobs/sha256:aa')).toBe('NAME_INVALID');
    expect(code(`/v2/%2e%2e/blobs/${D('a')}`)).toBe('NAME_INVALID');
    expect(code(`/v2/A/blobs/${D('a')}`)).toBe('NAME_INVALID');
    expect(code('/v2/x/blobs/sha256:abc')).toBe('DIGEST_INVALID');
    expect(code(`/v2/x/blobs/sha512:${'a'.repeat(128)}`)).toBe('DIGEST_INVALID');
    expect(code('/v2/x/manifests/-bad')).toBe('MANIFEST_INVALID');
    expect(code('/v2/x/tags/list?n=-1')).toBe('PAGINATION_NUMBER_INVALID');
    expect(code('/v2/x/tags/list?n=1e9')).toBe('PAGINATION_NUMBER_INVALID');
    expect(code('/v2/x/manifests/latest?ns=a%0ab')).toBe('NAME_INVALID');
    expect(code(`/v2/${'a/'.repeat(2000)}x/manifests/latest`)).toBe('NAME_INVALID');
    expect(code('/etc/passwd')).toBe('NOT_FOUND');
    expect(code('/v2/x/other/thing')).toBe('NOT_FOUND');
  });
});

describe('serve: Range', () => {
  it('serves one range, ignores what it does not support, and refuses what cannot be satisfied', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=50-999999999999', 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=9-3', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRange('items=0-1', 100)).toBeUndefined();
    expect(parseRange('bytes=99999999999999999999-', 100)).toBe('unsatisfiable');
    expect(parseRange(undefined, 100)).toBeUndefined();
  });
});

describe('serve: paging', () => {
  it('pages after `last`, and links the next page only when there is one', () => {
    const all = ['a', 'b', 'c', 'd', 'e'];
    expect(pageOf(all, { n: 2, last: undefined })).toEqual({ items: ['a', 'b'], next: 'b' });
    expect(pageOf(all, { n: 2, last: 'b' })).toEqual({ items: ['c', 'd'], next: 'd' });
    expect(pageOf(all, { n: 2, last: 'd' })).toEqual({ items: ['e'], next: undefined });
    expect(pageOf(all, { n: 2, last: 'bb' })).toEqual({ items: ['c', 'd'], next: 'd' });
    expect(pageOf(all, { n: undefined, last: 'c' })).toEqual({ items: ['d', 'e'], next: undefined });
    expect(pageOf(all, { n: 0, last: undefined })).toEqual({ items: [], next: undefined });
    expect(nextLink('/v2/_catalog', 2, 'a/b')).toBe('</v2/_catalog?n=2&last=a%2Fb>; rel="next"');
  });
});

function image(registry: string, repository: string, tag: string | undefined, digest: string): ImageRecord {
  return imageFixture({
    reference: `${registry}/${repository}${tag ? `:${tag}` : `@${digest}`}`,
    registry,
    repository,
    ...(tag ? { tag } : {}),
    digest,
    blobs: [digest],
    bytes: 10,
  });
}

function loaded(path: string, images: ImageRecord[], extra: Partial<BundleMetadata> = {}): CheckedFile {
  const digests = [...new Set(images.map((i) => i.digest))];
  const metadata = metadataFixture(images, {
    blobs: digests.map((digest) => ({
      digest,
      size: 10,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      role: 'manifest' as const,
    })),
    ...extra,
  });
  return {
    path,
    metadata,
    blobs: new Map(digests.map((d, i) => [d, { offset: 512 * (i + 1), size: 10 }])),
    seen: new Map(),
  };
}

describe('serve: what several bundles serve together', () => {
  it('refuses a tag two bundles give different content, naming both', () => {
    const a = loaded('a.tar', [image('ghcr.io', 'x/app', 'v1', D('a'))]);
    const b = loaded('b.tar', [image('ghcr.io', 'x/app', 'v1', D('b'))]);
    expect(() => assembleUnits([a, b])).toThrow(ServeInputError);
    expect(() => assembleUnits([a, b])).toThrow(/ghcr.io\/x\/app:v1 is sha256:b+ in b.tar but sha256:a+ in a.tar/);
    expect(() => assembleUnits([a, loaded('c.tar', [image('ghcr.io', 'x/app', 'v1', D('a'))])])).not.toThrow();
  });

  it('refuses a delta served without what it was made against', () => {
    const delta = loaded('delta.tar', [image('ghcr.io', 'x/app', 'v2', D('c'))], { delta: { against: ['base.tar'] } });
    delta.metadata.blobs.push({ digest: D('d'), size: 5, mediaType: 'x/y', role: 'layer', external: true });
    expect(() => assembleUnits([delta])).toThrow(/delta.tar is a delta: 1 of the blobs .*\(base.tar\)/);
    const base = loaded('base.tar', [image('ghcr.io', 'x/app', 'v1', D('a'))]);
    base.metadata.blobs.push({ digest: D('d'), size: 5, mediaType: 'x/y', role: 'layer' });
    base.blobs.set(D('d'), { offset: 4096, size: 5 });
    expect(assembleUnits([delta, base]).blobs.get(D('d'))?.pieces).toEqual([
      { file: 'base.tar', offset: 4096, size: 5 },
    ]);
  });

  it('keeps the same path of two registries apart: ?ns= picks one, no ns is ambiguous', () => {
    const { units, blobs } = assembleUnits([
      loaded('a.tar', [image('docker.io', 'library/app', '1', D('a')), image('ghcr.io', 'library/app', '1', D('b'))]),
    ]);
    const content = new ServedContent(units, blobs, { keepRegistryHost: false });
    expect(content.names()).toEqual(['library/app']);
    expect(content.lookupTag('library/app', 'docker.io', '1')).toEqual({ digest: D('a') });
    expect(content.lookupTag('library/app', 'ghcr.io', '1')).toEqual({ digest: D('b') });
    expect(content.lookupTag('library/app', undefined, '1')).toEqual({ ambiguous: ['docker.io', 'ghcr.io'] });
    expect(content.holds('library/app', 'docker.io', D('b'))).toBe(false);
    expect(content.holds('library/app', 'ghcr.io', D('b'))).toBe(true);
    expect(content.hasRepository('library/app', 'quay.io')).toBe(false);
    const kept = new ServedContent(units, blobs, { keepRegistryHost: true, repoPrefix: 'mirror' });
    expect(kept.names()).toEqual(['mirror/docker.io/library/app', 'mirror/ghcr.io/library/app']);
  });
});

describe('serve: basic auth', () => {
  it('accepts exactly the configured user and password', () => {
    const creds = { username: 'ci', password: 'p:w' };
    const header = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(authorized(header('ci:p:w'), creds)).toBe(true);
    expect(authorized(header('ci:p:W'), creds)).toBe(false);
    expect(authorized(header('ci:p:w '), creds)).toBe(false);
    expect(authorized(`Bearer ${Buffer.from('ci:p:w').toString('base64')}`, creds)).toBe(false);
    expect(authorized(undefined, creds)).toBe(false);
  });
});

describe('serve: --listen', () => {
  it('takes HOST:PORT, :PORT and [v6]:PORT, and refuses the rest', () => {
    expect(parseListen(':6000')).toEqual({ host: undefined, port: 6000 });
    expect(parseListen('10.5.0.1:6000')).toEqual({ host: '10.5.0.1', port: 6000 });
    expect(parseListen('[::1]:6000')).toEqual({ host: '::1', port: 6000 });
    expect(() => parseListen('6000')).toThrow(/HOST:PORT/);
    expect(() => parseListen('host:70000')).toThrow(/HOST:PORT/);
  });
});

describe('serve: --tls-generate', () => {
  it('writes a CA and a server certificate for the advertised names, keys 0600, and reuses them', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'serve-tls-')), 'tls');
    const first = await tlsFromFolder(dir, ['10.5.0.1', 'registry.lan']);
    expect(first.written.map((f) => f.slice(dir.length + 1)).sort()).toEqual(
      [TLS_FILES.caCert, TLS_FILES.caKey, TLS_FILES.cert, TLS_FILES.key].sort(),
    );
    expect(statSync(join(dir, TLS_FILES.key)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, TLS_FILES.caKey)).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(first.cert);
    const ca = new X509Certificate(first.caPem);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName).toBe('IP Address:10.5.0.1, DNS:registry.lan');

    const again = await tlsFromFolder(dir, ['registry.lan']);
    expect(again.written).toEqual([]);
    expect(again.cert).toBe(first.cert);

    const renamed = await tlsFromFolder(dir, ['10.5.0.2']);
    expect(renamed.written.map((f) => f.slice(dir.length + 1)).sort()).toEqual([TLS_FILES.cert, TLS_FILES.key].sort());
    expect(renamed.caPem).toBe(first.caPem);
    expect(new X509Certificate(renamed.cert).checkIssued(ca)).toBe(true);
    expect(readFileSync(join(dir, TLS_FILES.cert), 'utf8')).toBe(renamed.cert);
  });

  it('refuses a name a certificate cannot hold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'serve-tls-'));
    await expect(tlsFromFolder(dir, ['bad name'])).rejects.toThrow(/not a host name or IP address/);
  });
});
