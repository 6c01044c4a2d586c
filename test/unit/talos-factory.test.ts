import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { factoryInputs, type FactoryArgs } from '../../src/commands/factory-options.js';
import { parseReference } from '../../src/reference/reference.js';
import { bootAssets, installerImage, parseTalosRelease, type FactoryTarget } from '../../src/talos-factory/assets.js';
import {
  MAX_SCHEMATIC_BYTES,
  parseSchematic,
  readSchematicFile,
  schematicId,
  schematicIdOf,
  schematicYaml,
  SchematicError,
} from '../../src/talos-factory/schematic.js';
import { UserInputError } from '../../src/util/user-input.js';

const EMPTY = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';
const id = (text: string) => schematicId(parseSchematic(text, 'schematic.yaml'));

describe('schematic IDs the Image Factory published', () => {
  // siderolabs/image-factory pkg/schematic/schematic_test.go (TestID, TestUnmarshalID): the inputs
  // are the test's own, as JSON; the IDs are the ones the factory's code computes for them.
  it.each([
    ['{}', EMPTY],
    ['customization: {}', EMPTY],
    ['customization: {"extraKernelArgs": []}', EMPTY],
    [
      '{"customization": {"extraKernelArgs": ["noapic", "nolapic"]}}',
      '9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c',
    ],
    [
      '{"customization": {"extraKernelArgs": ["noapic", "nolapic"], "systemExtensions": {}}}',
      '9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c',
    ],
    [
      '{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [], "systemExtensions": {}}}',
      'd308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f',
    ],
    [
      '{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"}}',
      'ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9',
    ],
    [
      '{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"},"customization":{}}',
      'ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9',
    ],
    [
      '{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}',
      'fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6',
    ],
  ])('%s', (text, expected) => {
    expect(id(text)).toBe(expected);
  });

  // Extension schematics: the factory's own tests have none. These IDs are what factory.talos.dev
  // answered ("Your image schematic ID is …") for the extensions named, as users quote it in public
  // repositories next to the schematic (e.g. a Proxmox Terraform file quoting the YAML and the ID;
  // a cluster guide listing the UI's choices and its answer); not from Sidero's own documentation.
  it('qemu-guest-agent (ce4c9805…), written as the factory UI writes it and as YAML users write', () => {
    const expected = 'ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515';
    expect(
      id('customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n'),
    ).toBe(expected);
    expect(id('customization: {systemExtensions: {officialExtensions: ["siderolabs/qemu-guest-agent"]}}')).toBe(
      expected,
    );
  });

  it('iscsi-tools and util-linux-tools (613e1592…), the Longhorn schematic', () => {
    expect(
      id(
        'customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/iscsi-tools\n            - siderolabs/util-linux-tools\n',
      ),
    ).toBe('613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245');
  });

  it('META keys as Go reads integers: 10, 0xa, 0o12 and 0b1010 are one schematic', () => {
    const meta = (key: string) => id(`customization:\n  meta:\n    - key: ${key}\n      value: foo\n`);
    for (const key of ['10', '0xa', '0o12', '0b1010', '012'])
      expect(meta(key), key).toBe('d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f');
  });
});

describe('the canonical YAML (yaml.v3 Marshal)', () => {
  const yamlOf = (text: string) => schematicYaml(parseSchematic(text, 's.yaml'));

  it('quotes what would read back as another type, single-quotes flow text, escapes what is not printable', () => {
    expect(
      yamlOf(
        'customization:\n  extraKernelArgs: ["", "true", "yes", "1.5", "0x1F", "a: b", "{x}", "tab\\there", "é😀", console=ttyS0]\n',
      ),
    ).toBe(
      'customization:\n    extraKernelArgs:\n        - ""\n        - "true"\n        - "yes"\n        - "1.5"\n        - "0x1F"\n' +
        '        - \'a: b\'\n        - \'{x}\'\n        - "tab\\there"\n        - "é\\U0001F600"\n        - console=ttyS0\n',
    );
  });

  it('writes a plain scalar in a string field as its text (a plain 10 is the text "10")', () => {
    expect(yamlOf('customization:\n  extraKernelArgs: [10]\n')).toBe(
      'customization:\n    extraKernelArgs:\n        - "10"\n',
    );
  });

  it('writes a multi-line list item as a literal block past its dash', () => {
    expect(yamlOf('customization:\n  extraKernelArgs: ["a\\nb\\n", "c\\nd"]\n')).toBe(
      'customization:\n    extraKernelArgs:\n        - |\n          a\n          b\n        - |-\n          c\n          d\n',
    );
  });

  it('writes multi-line META values as literal blocks indented under the item', () => {
    expect(yamlOf('customization:\n  meta:\n    - key: 12\n      value: "a: 1\\nb: 2\\n"\n')).toBe(
      'customization:\n    meta:\n        - key: 12\n          value: |\n            a: 1\n            b: 2\n',
    );
  });

  it('writes overlay options typed as Go decodes them into any, keys sorted', () => {
    expect(yamlOf('overlay:\n  image: i\n  name: n\n  options: {b: 1, a: [yes, "2", ~], c: {d: true}}\n')).toBe(
      'overlay:\n    image: i\n    name: "n"\n    options:\n        a:\n            - "yes"\n            - "2"\n            - null\n        b: 1\n        c:\n            d: true\ncustomization: {}\n',
    );
  });
});

describe('schematics refused, with one line naming the file', () => {
  const refused = (text: string) => () => parseSchematic(text, 'bad.yaml');

  it('an unknown key, as the factory (KnownFields) refuses it', () => {
    expect(refused('customisation: {}')).toThrow(/bad\.yaml: unknown key "customisation" in schematic/);
    expect(refused('customization: {extensions: []}')).toThrow(/unknown key "extensions" in customization/);
    expect(refused('customization: {meta: [{key: 1, value: x, extra: y}]}')).toThrow(/unknown key "extra"/);
  });

  it('newer fields whose written form was not checked, pointing at --talos-schematic-id', () => {
    expect(refused('customization: {bootloader: sd-boot}')).toThrow(/customization\.bootloader .*--talos-schematic-id/);
    expect(refused('owner: me@example.com')).toThrow(/schematic\.owner/);
  });

  it('wrong types', () => {
    expect(refused('customization: []')).toThrow(/customization must be a mapping/);
    expect(refused('customization: {extraKernelArgs: noapic}')).toThrow(/extraKernelArgs must be a list/);
    expect(refused('customization: {extraKernelArgs: [{a: b}]}')).toThrow(/extraKernelArgs\[0\] must be a text/);
    expect(refused('customization: {meta: [{key: 256, value: x}]}')).toThrow(
      /key must be a whole number from 0 to 255/,
    );
    expect(refused('customization: {meta: [{key: "10", value: x}]}')).toThrow(/key must be a whole number/);
    expect(refused('customization: {secureboot: {includeWellKnownCertificates: "true"}}')).toThrow(/true or false/);
    expect(refused('- a\n- b\n')).toThrow(/schematic must be a mapping/);
    expect(refused('customization: {\n')).toThrow(/not valid YAML/);
  });

  it('an alias bomb, stopped by the node count, not by memory', () => {
    // Ten levels of ten aliases each: 10^10 nodes when expanded, a few hundred bytes when written.
    const key = (i: number) => 'abcdefghij'[i]!;
    const lines = ['a: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++)
      lines.push(
        `${key(i)}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const bomb = `overlay:\n  image: i\n  name: n\n  options:\n${lines.map((l) => `    ${l}`).join('\n')}\n`;
    expect(refused(bomb)).toThrow(/more than 4096 nodes once aliases are expanded/);
  });

  it('a huge file, before it is read whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'schematic-'));
    try {
      const file = join(dir, 'huge.yaml');
      writeFileSync(file, `customization: {extraKernelArgs: ["${'a'.repeat(MAX_SCHEMATIC_BYTES)}"]}\n`);
      await expect(readSchematicFile(file)).rejects.toThrow(/huge\.yaml is \d+ bytes, more than the 65536/);
      await expect(readSchematicFile(join(dir, 'none.yaml'))).rejects.toThrow(/none\.yaml: no such file/);
      await expect(readSchematicFile(dir)).rejects.toThrow(/is not a regular file \(a folder\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('text whose canonical form is not reproduced here, rather than a wrong ID', () => {
    const s = parseSchematic('customization: {extraKernelArgs: ["a\\n\\n"]}', 'x.yaml');
    expect(() => schematicIdOf(s, 'x.yaml')).toThrow(
      /x\.yaml: a text ending in more than one line break.*--talos-schematic-id/,
    );
    expect(refused('overlay: {image: i, name: n, options: {ratio: 1.5}}')).toThrow(/reads as a number or a time/);
    expect(refused('overlay: {image: i, name: n, options: {a_b: 1}}')).toThrow(/only keys of letters/);
  });

  it('errors are user input errors (exit 2)', () => {
    expect(refused('x: 1')).toThrow(SchematicError);
    expect(refused('x: 1')).toThrow(UserInputError);
  });
});

const target = (version: string, over: Partial<FactoryTarget> = {}): FactoryTarget => ({
  schematicId: EMPTY,
  release: parseTalosRelease(version),
  platform: 'metal',
  secureBoot: false,
  ...over,
});

describe('installer names', () => {
  it('from 1.14 the per-platform installer, Talos 1.14 default install image', () => {
    expect(installerImage(target('v1.14.0'))).toBe(`factory.talos.dev/metal-installer/${EMPTY}:v1.14.0`);
    expect(installerImage(target('1.14.2', { platform: 'aws' }))).toBe(
      `factory.talos.dev/aws-installer/${EMPTY}:v1.14.2`,
    );
    expect(installerImage(target('v1.14.0-rc.1', { secureBoot: true }))).toBe(
      `factory.talos.dev/metal-installer-secureboot/${EMPTY}:v1.14.0-rc.1`,
    );
    expect(installerImage(target('v2.0.0'))).toBe(`factory.talos.dev/metal-installer/${EMPTY}:v2.0.0`);
  });

  it('before 1.14 the platform-less installer the factory README names', () => {
    expect(installerImage(target('v1.13.9'))).toBe(`factory.talos.dev/installer/${EMPTY}:v1.13.9`);
    expect(installerImage(target('v1.5.0', { secureBoot: true }))).toBe(
      `factory.talos.dev/installer-secureboot/${EMPTY}:v1.5.0`,
    );
  });

  it('is a reference the tool parses, host kept as factory.talos.dev', () => {
    const ref = parseReference(installerImage(target('v1.14.0')));
    expect(ref).toMatchObject({
      registry: 'factory.talos.dev',
      repository: `metal-installer/${EMPTY}`,
      tag: 'v1.14.0',
    });
  });

  it('refuses versions the factory does not tag', () => {
    for (const bad of ['v1.14', 'latest', 'v1.14.0/../x', 'v1.14.0-'])
      expect(() => parseTalosRelease(bad), bad).toThrow(/not a Talos release/);
  });
});

describe('boot asset URLs', () => {
  const base = `https://factory.talos.dev/image/${EMPTY}/v1.14.0`;

  it('ISO, raw disk images and PXE files as the factory names them, per architecture', () => {
    expect(bootAssets(target('v1.14.0'), ['iso', 'raw.zst', 'raw.xz', 'pxe'], ['amd64', 'arm64'])).toEqual([
      { url: `${base}/metal-amd64.iso`, name: 'talos-v1.14.0-metal-amd64.iso' },
      { url: `${base}/metal-amd64.raw.zst`, name: 'talos-v1.14.0-metal-amd64.raw.zst' },
      { url: `${base}/metal-amd64.raw.xz`, name: 'talos-v1.14.0-metal-amd64.raw.xz' },
      { url: `${base}/kernel-amd64`, name: 'talos-v1.14.0-kernel-amd64' },
      { url: `${base}/initramfs-amd64.xz`, name: 'talos-v1.14.0-initramfs-amd64.xz' },
      { url: `${base}/cmdline-metal-amd64`, name: 'talos-v1.14.0-cmdline-metal-amd64' },
      { url: `${base}/metal-arm64.iso`, name: 'talos-v1.14.0-metal-arm64.iso' },
      { url: `${base}/metal-arm64.raw.zst`, name: 'talos-v1.14.0-metal-arm64.raw.zst' },
      { url: `${base}/metal-arm64.raw.xz`, name: 'talos-v1.14.0-metal-arm64.raw.xz' },
      { url: `${base}/kernel-arm64`, name: 'talos-v1.14.0-kernel-arm64' },
      { url: `${base}/initramfs-arm64.xz`, name: 'talos-v1.14.0-initramfs-arm64.xz' },
      { url: `${base}/cmdline-metal-arm64`, name: 'talos-v1.14.0-cmdline-metal-arm64' },
    ]);
  });

  it('Secure Boot: -secureboot images and the UKI; PXE refused for it, UKI without it', () => {
    const sb = target('v1.14.0', { secureBoot: true });
    expect(bootAssets(sb, ['iso', 'uki'], ['amd64']).map((a) => a.url)).toEqual([
      `${base}/metal-amd64-secureboot.iso`,
      `${base}/metal-amd64-secureboot-uki.efi`,
    ]);
    expect(() => bootAssets(sb, ['pxe'], ['amd64'])).toThrow(/use --talos-boot-media uki/);
    expect(() => bootAssets(target('v1.14.0'), ['uki'], ['amd64'])).toThrow(/add --talos-secureboot/);
  });
});

describe('factoryInputs (what export adds)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'factory-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const args = (over: Partial<FactoryArgs>): FactoryArgs => ({
    'talos-boot-media': [],
    'talos-platform': 'metal',
    'talos-secureboot': false,
    arch: [],
    ...over,
  });

  it('nothing asked, nothing added', async () => {
    expect(await factoryInputs(args({}))).toBeUndefined();
  });

  it('a schematic file and a version: its ID, the installer, the boot media for --platform arches', async () => {
    const file = join(dir, 'qemu.yaml');
    writeFileSync(file, 'customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/qemu-guest-agent]\n');
    const qemu = 'ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515';
    const got = await factoryInputs(
      args({
        'talos-schematic': file,
        'talos-version': 'v1.14.0',
        'talos-boot-media': ['iso'],
        platform: ['linux/arm64'],
      }),
    );
    expect(got?.schematicId).toBe(qemu);
    expect(got?.images).toEqual([`factory.talos.dev/metal-installer/${qemu}:v1.14.0`]);
    expect(got?.files).toEqual([
      { url: `https://factory.talos.dev/image/${qemu}/v1.14.0/metal-arm64.iso`, name: 'talos-v1.14.0-metal-arm64.iso' },
    ]);
    expect(got?.notes.join('\n')).toMatch(
      /ID ce4c9805.*computed offline[\s\S]*unpinned and the bundle records the digest/,
    );
  });

  it('a version alone takes the schematic without customisation; an ID can be given', async () => {
    expect((await factoryInputs(args({ 'talos-version': 'v1.13.9' })))?.images).toEqual([
      `factory.talos.dev/installer/${EMPTY}:v1.13.9`,
    ]);
    const given = 'ab'.repeat(32);
    expect((await factoryInputs(args({ 'talos-version': 'v1.14.0', 'talos-schematic-id': given })))?.schematicId).toBe(
      given,
    );
  });

  it('refuses what does not fit, before anything is fetched', async () => {
    await expect(factoryInputs(args({ 'talos-boot-media': ['iso'] }))).rejects.toThrow(/needs --talos-version/);
    await expect(factoryInputs(args({ 'talos-schematic': 'x.yaml' }))).rejects.toThrow(/add --talos-version/);
    await expect(factoryInputs(args({ 'talos-version': 'v1.14.0', 'talos-boot-media': ['dvd'] }))).rejects.toThrow(
      /"dvd" is not a boot medium/,
    );
    await expect(
      factoryInputs(args({ 'talos-version': 'v1.14.0', arch: ['riscv64'], 'talos-boot-media': ['iso'] })),
    ).rejects.toThrow(/--arch "riscv64"/);
    await expect(factoryInputs(args({ 'talos-version': 'v1.14.0', 'talos-platform': 'Metal/../x' }))).rejects.toThrow(
      /not a platform name/,
    );
    await expect(factoryInputs(args({ 'talos-version': 'v1.14.0', 'talos-schematic-id': 'XYZ' }))).rejects.toThrow(
      /not 64 lower-case hex digits/,
    );
  });
});
