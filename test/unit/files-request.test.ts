import { describe, expect, it } from 'vitest';
import { parseSpec, SpecError } from '../../src/export/spec.js';
import { FILE_ARTIFACT_TYPE, fileArtifact, TITLE_ANNOTATION } from '../../src/files/artifact.js';
import { fileMediaType } from '../../src/files/media-type.js';
import { fileRepository, fileTag, repositoryComponent } from '../../src/files/names.js';
import { FileRequestError, parseFileArgument } from '../../src/files/request.js';
import { isValidRepositoryPath, isValidTag } from '../../src/reference/reference.js';

const HEX = 'ab'.repeat(32);

describe('--file grammar', () => {
  it('takes a URL, its pin and its name', () => {
    expect(parseFileArgument(`https://example.com/rel/talosctl-linux-amd64#sha256=${HEX}@talosctl`)).toEqual({
      source: { kind: 'url', url: 'https://example.com/rel/talosctl-linux-amd64' },
      sha256: `sha256:${HEX}`,
      name: 'talosctl',
      origin: '--file',
    });
  });

  it('names a file after the last segment of the URL path, percent-decoded, or the path base name', () => {
    expect(parseFileArgument('https://example.com/a/metal%20amd64.iso?x=1').name).toBe('metal amd64.iso');
    expect(parseFileArgument('./out/vmlinuz-amd64').name).toBe('vmlinuz-amd64');
    expect(parseFileArgument('./out/vmlinuz-amd64').source).toEqual({ kind: 'path', path: './out/vmlinuz-amd64' });
  });

  it('keeps the user of a URL: only an @ after the last / starts a name', () => {
    const r = parseFileArgument(`https://user:pw@example.com/f.bin#sha256=${HEX}`);
    expect(r.source).toEqual({ kind: 'url', url: 'https://user:pw@example.com/f.bin' });
    expect(r.name).toBe('f.bin');
    expect(parseFileArgument('https://user@example.com/g.bin').source).toEqual({
      kind: 'url',
      url: 'https://user@example.com/g.bin',
    });
    expect(parseFileArgument('./dir@x/file@v2@file@v2').name).toBe('v2');
    expect(parseFileArgument('./dir@x/file@v2@file@v2').source).toEqual({ kind: 'path', path: './dir@x/file@v2@file' });
  });

  it('upper-case hex is read as the same digest', () => {
    expect(parseFileArgument(`f.bin#sha256=${HEX.toUpperCase()}`).sha256).toBe(`sha256:${HEX}`);
  });

  it.each([
    [`f.bin#sha512=${HEX}`, /only sha256=HEX/],
    ['f.bin#sha256=abc', /only sha256=HEX/],
    ['f.bin#', /only sha256=HEX/],
    ['ftp://example.com/f.bin', /ftp: URLs are not fetched/],
    ['https://example.com/dir/', /ends in no file name/],
    ['f.bin@..', /not a plain file name/],
    ['f.bin@a\u0007b', /not a plain file name/],
    ['https://example.com/a%2Fb', /not a plain file name/],
    ['@name', /no URL or path/],
    [`./f\u001b[31m.bin@x`, /control characters/],
  ])('refuses %j', (text, message) => {
    expect(() => parseFileArgument(text)).toThrow(FileRequestError);
    expect(() => parseFileArgument(text)).toThrow(message);
  });
});

describe('file names as repository components and tags', () => {
  it.each([
    ['talosctl-linux-amd64', 'talosctl-linux-amd64', 'talosctl-linux-amd64'],
    ['metal-amd64.iso', 'metal-amd64.iso', 'metal-amd64.iso'],
    ['Talos Linux v1.14.iso', 'talos-linux-v1.14.iso', 'Talos_Linux_v1.14.iso'],
    ['.hidden', 'hidden', '_.hidden'],
    ['-x-', 'x', '_-x-'],
    ['a._b', 'a-b', 'a._b'],
    ['a__b', 'a__b', 'a__b'],
    ['a---b', 'a---b', 'a---b'],
    ['é', 'file', '_'],
    ['initramfs-amd64.xz', 'initramfs-amd64.xz', 'initramfs-amd64.xz'],
  ])('%j → repository %j, tag %j', (name, component, tag) => {
    expect(repositoryComponent(name)).toBe(component);
    expect(fileTag(name)).toBe(tag);
    expect(isValidRepositoryPath(`files/${repositoryComponent(name)}`)).toBe(true);
    expect(isValidTag(fileTag(name))).toBe(true);
  });

  it('bounds long names to what the grammar allows', () => {
    const long = `${'A'.repeat(200)}.bin`;
    expect(isValidTag(fileTag(long))).toBe(true);
    expect(isValidRepositoryPath(fileRepository('some/deep/prefix', long))).toBe(true);
  });
});

describe('file artifact', () => {
  it('is what oras push writes: empty config, one titled layer with the media type where known', () => {
    const a = fileArtifact(
      { name: 'metal-amd64.iso', source: 'https://example.com/metal-amd64.iso', mode: 0o644 },
      { path: '/tmp/x', digest: `sha256:${HEX}`, size: 42 },
      'files',
    );
    const manifest = JSON.parse(a.manifest.toString()) as Record<string, unknown>;
    expect(manifest).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: FILE_ARTIFACT_TYPE,
      config: {
        mediaType: 'application/vnd.oci.empty.v1+json',
        digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
        size: 2,
      },
      layers: [
        {
          mediaType: 'application/x-iso9660-image',
          digest: `sha256:${HEX}`,
          size: 42,
          annotations: { [TITLE_ANNOTATION]: 'metal-amd64.iso' },
        },
      ],
    });
    expect(a.repository).toBe('files/metal-amd64.iso');
    expect(a.tag).toBe('metal-amd64.iso');
    expect(a.carried).toEqual({
      kind: 'file',
      name: 'metal-amd64.iso',
      source: 'https://example.com/metal-amd64.iso',
      mode: 0o644,
    });
    expect(a.blobs.find((b) => b.role === 'layer')?.content).toEqual({ path: '/tmp/x' });
    expect(fileMediaType('vmlinuz-amd64')).toBe('application/octet-stream');
  });
});

describe('spec files:', () => {
  it('reads mappings and the --file form, paths relative to the spec, modes as quoted octal', () => {
    const spec = parseSpec(
      `files:\n  - source: https://example.com/talosctl\n    sha256: ${HEX.toUpperCase()}\n    mode: '0755'\n  - ./boot/vmlinuz@kernel\n`,
      '/srv/specs/b.yaml',
    );
    expect(spec.files).toEqual([
      {
        source: { kind: 'url', url: 'https://example.com/talosctl' },
        sha256: `sha256:${HEX}`,
        name: 'talosctl',
        mode: 0o755,
        origin: '/srv/specs/b.yaml files[0]',
      },
      {
        source: { kind: 'path', path: '/srv/specs/boot/vmlinuz' },
        name: 'kernel',
        origin: '/srv/specs/b.yaml files[1]',
      },
    ]);
  });

  it.each([
    ['files: x\n', /"files" must be a list/],
    ['files:\n  - source: a\n    url: b\n', /unknown key "url"/],
    ['files:\n  - source: a\n    mode: 0755\n', /quoted octal string/],
    ["files:\n  - source: a\n    mode: '0999'\n", /quoted octal string/],
    ['files:\n  - name: a\n', /"source" must be/],
    ['files:\n  - source: a\n    name: ../x\n', /not a plain file name/],
  ])('refuses %j', (text, message) => {
    expect(() => parseSpec(text, 's.yaml')).toThrow(message);
    try {
      parseSpec(text, 's.yaml');
    } catch (err) {
      expect(err instanceof SpecError || err instanceof FileRequestError).toBe(true);
    }
  });
});
