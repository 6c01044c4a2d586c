import { describe, expect, it } from 'vitest';
import { parseSpec, SpecError } from '../../src/export/spec.js';
import { readFileSync } from 'node:fs';

describe('bundle spec', () => {
  it('reads every key, resolving paths against the spec folder', () => {
    const spec = parseSpec(
      "output: out/b.tar\nplatforms: [linux/amd64]\nimages: [busybox:1.36]\nimagesFiles: [talos.images]\nmirrors:\n  '*': http://127.0.0.1:5001\n",
      '/srv/specs/b.yaml',
    );
    expect(spec).toEqual({
      output: '/srv/specs/out/b.tar',
      platforms: ['linux/amd64'],
      images: ['busybox:1.36'],
      imagesFiles: ['/srv/specs/talos.images'],
      manifests: [],
      talosConfigs: [],
      mirrors: ['*=http://127.0.0.1:5001'],
    });
  });
  it('rejects an unknown key, naming key and file', () => {
    expect(() => parseSpec('image: [busybox]\n', 'my.yaml')).toThrow(SpecError);
    expect(() => parseSpec('image: [busybox]\n', 'my.yaml')).toThrow('my.yaml: unknown key "image"');
  });
  it('rejects wrong shapes and broken YAML', () => {
    expect(() => parseSpec('images: busybox\n', 's.yaml')).toThrow(/"images" must be a list/);
    expect(() => parseSpec('images: [a\n', 's.yaml')).toThrow(/not valid YAML/);
  });
  it('accepts the shipped example', () => {
    const spec = parseSpec(readFileSync('bundles/talos.yaml', 'utf8'), 'bundles/talos.yaml');
    expect(spec.images.length + spec.imagesFiles.length).toBeGreaterThan(0);
  });
});
