import { describe, expect, it } from 'vitest';
import { formatReference, parseReference, ReferenceError } from '../../src/reference/reference.js';
import { collectReferences, parseImageListText } from '../../src/reference/image-list.js';

const norm = (s: string) => formatReference(parseReference(s));
const HEX = 'a'.repeat(64);

describe('parseReference', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['ghcr.io/siderolabs/installer:v1.8.0', 'ghcr.io/siderolabs/installer:v1.8.0'],
    ['ghcr.io/siderolabs/flannel:0.28.8', 'ghcr.io/siderolabs/flannel:0.28.8'],
    [
      'registry.k8s.io/networking/kube-network-policies:v1.1.0',
      'registry.k8s.io/networking/kube-network-policies:v1.1.0',
    ],
    ['localhost/foo', 'localhost/foo:latest'],
    ['localhost:5000/foo/bar:t', 'localhost:5000/foo/bar:t'],
    ['127.0.0.1:5000/a_b/c-d:1.0', '127.0.0.1:5000/a_b/c-d:1.0'],
    ['quay.io/coreos/flannel:v0.12.0-amd64', 'quay.io/coreos/flannel:v0.12.0-amd64'],
    [`busybox@sha256:${HEX}`, `docker.io/library/busybox@sha256:${HEX}`],
    [`ghcr.io/x/y:v1@sha256:${HEX}`, `ghcr.io/x/y:v1@sha256:${HEX}`],
  ])('%s → %s', (input, want) => {
    expect(norm(input)).toBe(want);
  });

  it('keeps tag and digest apart, digest wins for fetching', () => {
    const r = parseReference(`ghcr.io/x/y:v1@sha256:${HEX}`);
    expect(r).toEqual({ registry: 'ghcr.io', repository: 'x/y', tag: 'v1', digest: `sha256:${HEX}` });
  });

  it.each([
    ['', 'empty'],
    ['Busybox', 'lowercase'],
    ['ghcr.io/Sidero/x', 'lowercase'],
    ['busybox:', 'tag'],
    ['busybox:-bad', 'tag'],
    ['busybox@sha256:abc', 'digest'],
    [`busybox@md5:${HEX}`, 'digest'],
    [`busybox@sha256:${'A'.repeat(64)}`, 'digest'],
    [`busybox@sha512:${'b'.repeat(128)}`, 'sha512 digests are not supported'],
    ['http://ghcr.io/x', 'scheme'],
    ['ghcr.io//x', 'empty path'],
    ['a b', 'whitespace'],
    ['foo/bar__-baz', 'not valid'],
  ])('rejects %j (%s)', (input, why) => {
    expect(() => parseReference(input)).toThrow(ReferenceError);
    expect(() => parseReference(input)).toThrow(why);
  });
});

describe('image lists', () => {
  it('reads talosctl output with comments and blank lines, keeping line numbers', () => {
    const text = '# images\nghcr.io/siderolabs/flannel:0.28.8\n\nregistry.k8s.io/pause:3.10.1  # sandbox\n';
    expect(parseImageListText(text, 'list.txt')).toEqual([
      { input: 'ghcr.io/siderolabs/flannel:0.28.8', origin: { source: 'list.txt', line: 2 } },
      { input: 'registry.k8s.io/pause:3.10.1', origin: { source: 'list.txt', line: 4 } },
    ]);
  });

  it('merges duplicates after normalisation and reports every invalid line', () => {
    const inputs = parseImageListText('busybox\ndocker.io/library/busybox:latest\nBAD\nalso bad:\n', 'f');
    const { references, problems } = collectReferences(inputs);
    expect(references.map((r) => r.name)).toEqual(['docker.io/library/busybox:latest']);
    expect(references[0]!.origins).toHaveLength(2);
    expect(problems.map((p) => p.origin.line)).toEqual([3, 4]);
  });
});
