import { createHash } from 'node:crypto';
import yaml from 'js-yaml';
import { SmallFileError, readSmallRegularFile } from '../util/small-file.js';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';
import { CanonicalYamlError, canonicalYaml, readsBackAsString, type YamlMap, type YamlNode } from './canonical-yaml.js';

/**
 * An Image Factory schematic, as siderolabs/image-factory's `pkg/schematic`
 * models it: the fields below, in the order its Go structs declare them
 * (which is the order they are written in, and so part of the ID).
 */
export interface Schematic {
  overlay?: SchematicOverlay;
  customization: {
    extraKernelArgs: string[];
    meta: MetaValue[];
    systemExtensions: { officialExtensions: string[] };
    secureboot: { includeWellKnownCertificates: boolean };
  };
}

/** An initial Talos META value: a key 0-255 and its text. */
export interface MetaValue {
  key: number;
  value: string;
}

/** A board overlay: its image, its name, and free-form options the overlay reads. */
export interface SchematicOverlay {
  image: string;
  name: string;
  /** As read, typed as yaml.v3 types them, ready to be written back. */
  options?: YamlMap;
}

/** A schematic file that cannot be used: one line naming the file and what is wrong. */
export class SchematicError extends UserInputError {
  override name = 'SchematicError';
}

/** A schematic is a few lines; this leaves room for long kernel arguments and META values. */
export const MAX_SCHEMATIC_BYTES = 64 * 1024;
/** Nodes visited with aliases expanded: an alias bomb stops here, not in memory. */
export const MAX_SCHEMATIC_NODES = 4096;
const MAX_DEPTH = 16;
const MAX_LIST = 256;
const MAX_TEXT = 4096;

/** Fields newer factories take whose written form could not be checked against the factory's source. */
const UNVERIFIED_FIELDS: Record<string, string[]> = {
  schematic: ['owner'],
  customization: ['embeddedMachineConfiguration', 'bootloader', 'diskImage'],
  'customization.secureboot': ['enrollKeys'],
};

/** Reads and checks a schematic file: a UserInputError (exit 2) naming the file when it is not one. */
export async function readSchematicFile(path: string): Promise<Schematic> {
  let text: string | undefined;
  try {
    text = await readSmallRegularFile(path, MAX_SCHEMATIC_BYTES);
  } catch (err) {
    if (!(err instanceof SmallFileError)) throw err;
    throw new SchematicError(`schematic ${printable(path)} ${err.message}`);
  }
  if (text === undefined) throw new SchematicError(`schematic ${printable(path)}: no such file`);
  return parseSchematic(text, path);
}

/** A plain (unquoted) scalar, kept as written so it can be typed as yaml.v3 types it. */
class PlainScalar {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
  // js-yaml names object keys "[object Object]"; this tag makes it use the text instead.
  get [Symbol.toStringTag](): string {
    return 'PlainScalar';
  }
}

/**
 * No implicit types: every plain scalar becomes a PlainScalar, every quoted or
 * block scalar a string, so the fields can be typed as Go's decoder types them
 * (a quoted "10" is no META key; a plain `0xa` is 10).
 */
const SCHEMA = yaml.FAILSAFE_SCHEMA.extend({
  implicit: [
    new yaml.Type('tag:yaml.org,2002:plain', {
      kind: 'scalar',
      resolve: () => true,
      construct: (text: string) => new PlainScalar(text),
    }),
  ],
});

/** Parses and checks a schematic's text; `source` names it in messages. */
export function parseSchematic(text: string, source: string): Schematic {
  if (text.length > MAX_SCHEMATIC_BYTES)
    throw new SchematicError(`schematic ${printable(source)} is larger than ${MAX_SCHEMATIC_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: source, schema: SCHEMA });
  } catch (err) {
    throw new SchematicError(
      `schematic ${printable(source)}: not valid YAML: ${printable((err as Error).message.split('\n')[0] ?? '')}`,
    );
  }
  const reader = new NodeReader(source);
  return reader.schematic(doc);
}

/** The canonical YAML the Image Factory hashes: yaml.v3's Marshal of the schematic. */
export function schematicYaml(schematic: Schematic): string {
  const c = schematic.customization;
  const customization: Array<[string, YamlNode]> = [];
  if (c.extraKernelArgs.length > 0) customization.push(['extraKernelArgs', stringList(c.extraKernelArgs)]);
  if (c.meta.length > 0)
    customization.push([
      'meta',
      {
        kind: 'seq',
        items: c.meta.map((m) => ({
          kind: 'map',
          entries: [
            ['key', { kind: 'plain', text: String(m.key) }],
            ['value', { kind: 'string', value: m.value }],
          ],
        })),
      },
    ]);
  if (c.systemExtensions.officialExtensions.length > 0)
    customization.push([
      'systemExtensions',
      { kind: 'map', entries: [['officialExtensions', stringList(c.systemExtensions.officialExtensions)]] },
    ]);
  if (c.secureboot.includeWellKnownCertificates)
    customization.push([
      'secureboot',
      { kind: 'map', entries: [['includeWellKnownCertificates', { kind: 'plain', text: 'true' }]] },
    ]);
  const root: YamlMap = { kind: 'map', entries: [] };
  const overlay = schematic.overlay;
  if (overlay && (overlay.image !== '' || overlay.name !== '' || (overlay.options?.entries.length ?? 0) > 0)) {
    const entries: Array<[string, YamlNode]> = [
      ['image', { kind: 'string', value: overlay.image }],
      ['name', { kind: 'string', value: overlay.name }],
    ];
    if (overlay.options && overlay.options.entries.length > 0) entries.push(['options', overlay.options]);
    root.entries.push(['overlay', { kind: 'map', entries }]);
  }
  root.entries.push(['customization', { kind: 'map', entries: customization }]);
  return canonicalYaml(root);
}

/** The schematic ID: SHA-256 of the canonical YAML, lower-case hex, as the Image Factory computes it. */
export function schematicId(schematic: Schematic): string {
  return createHash('sha256').update(schematicYaml(schematic), 'utf8').digest('hex');
}

/** The ID of a schematic file, or the one line saying why it cannot be computed offline. */
export function schematicIdOf(schematic: Schematic, source: string): string {
  try {
    return schematicId(schematic);
  } catch (err) {
    if (!(err instanceof CanonicalYamlError)) throw err;
    throw new SchematicError(
      `schematic ${printable(source)}: ${err.message}; get its ID from the Image Factory (POST /schematics) and pass --talos-schematic-id`,
    );
  }
}

const stringList = (values: string[]): YamlNode => ({
  kind: 'seq',
  items: values.map((value) => ({ kind: 'string', value })),
});

type Mapping = Record<string, unknown>;

/**
 * Types the parsed document as yaml.v3 decodes it into the factory's structs
 * (KnownFields: an unknown key is an error), counting every node it visits.
 */
class NodeReader {
  private nodes = 0;

  constructor(private readonly source: string) {}

  schematic(doc: unknown): Schematic {
    const root = this.mapping(doc, 'schematic', ['overlay', 'customization'], 0);
    const customization = this.mapping(
      root.customization,
      'customization',
      ['extraKernelArgs', 'meta', 'systemExtensions', 'secureboot'],
      1,
    );
    const extensions = this.mapping(
      customization.systemExtensions,
      'customization.systemExtensions',
      ['officialExtensions'],
      2,
    );
    const secureboot = this.mapping(
      customization.secureboot,
      'customization.secureboot',
      ['includeWellKnownCertificates'],
      2,
    );
    const schematic: Schematic = {
      customization: {
        extraKernelArgs: this.strings(customization.extraKernelArgs, 'customization.extraKernelArgs', 2),
        meta: this.list(customization.meta, 'customization.meta', 2).map((m, i) => this.meta(m, i)),
        systemExtensions: {
          officialExtensions: this.strings(
            extensions.officialExtensions,
            'customization.systemExtensions.officialExtensions',
            3,
          ),
        },
        secureboot: {
          includeWellKnownCertificates: this.bool(
            secureboot.includeWellKnownCertificates,
            'customization.secureboot.includeWellKnownCertificates',
          ),
        },
      },
    };
    if (root.overlay !== undefined && root.overlay !== null) schematic.overlay = this.overlay(root.overlay);
    return schematic;
  }

  private fail(message: string): never {
    throw new SchematicError(`schematic ${printable(this.source)}: ${message}`);
  }

  private visit(depth: number): void {
    if (++this.nodes > MAX_SCHEMATIC_NODES)
      this.fail(`more than ${MAX_SCHEMATIC_NODES} nodes once aliases are expanded; a schematic is a few lines`);
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
  }

  /** A mapping with only `keys` (null or absent: empty), as a struct with KnownFields decodes it. */
  private mapping(value: unknown, where: string, keys: string[], depth: number): Mapping {
    this.visit(depth);
    if (value === undefined || value === null || isNullPlain(value)) return {};
    if (typeof value !== 'object' || Array.isArray(value) || value instanceof PlainScalar)
      this.fail(`${where} must be a mapping (keys ${keys.join(', ')})`);
    const obj = value as Mapping;
    for (const key of Object.keys(obj)) {
      if (keys.includes(key)) continue;
      const unverified = UNVERIFIED_FIELDS[where]?.includes(key);
      if (unverified)
        this.fail(
          `${where}.${key} is taken by newer Image Factories, but how they write it into the ID could not be checked offline; get the ID from the factory (POST /schematics) and pass --talos-schematic-id`,
        );
      this.fail(
        `unknown key "${printable(key)}" in ${where} (the Image Factory refuses it too; known: ${keys.join(', ')})`,
      );
    }
    return obj;
  }

  private list(value: unknown, where: string, depth: number): unknown[] {
    this.visit(depth);
    if (value === undefined || value === null || isNullPlain(value)) return [];
    if (!Array.isArray(value)) this.fail(`${where} must be a list`);
    if (value.length > MAX_LIST) this.fail(`${where} has more than ${MAX_LIST} entries`);
    return value as unknown[];
  }

  /** A Go string field: any scalar's text; a plain null is the empty string. */
  private text(value: unknown, where: string, depth: number): string {
    this.visit(depth);
    if (value === undefined || value === null || isNullPlain(value)) return '';
    const text = value instanceof PlainScalar ? value.text : value;
    if (typeof text !== 'string')
      this.fail(`${where} must be a text, not a ${Array.isArray(value) ? 'list' : 'mapping'}`);
    if (text.length > MAX_TEXT) this.fail(`${where} is longer than ${MAX_TEXT} characters`);
    return text;
  }

  private strings(value: unknown, where: string, depth: number): string[] {
    return this.list(value, where, depth).map((v, i) => this.text(v, `${where}[${i}]`, depth + 1));
  }

  /** A Go bool field: plain true/false, and the YAML 1.1 words yaml.v3 accepts for a typed bool. */
  private bool(value: unknown, where: string): boolean {
    this.visit(3);
    if (value === undefined || value === null || isNullPlain(value)) return false;
    if (value instanceof PlainScalar) {
      if (/^(true|True|TRUE|y|Y|yes|Yes|YES|on|On|ON)$/.test(value.text)) return true;
      if (/^(false|False|FALSE|n|N|no|No|NO|off|Off|OFF)$/.test(value.text)) return false;
    }
    this.fail(`${where} must be true or false`);
  }

  private meta(value: unknown, index: number): MetaValue {
    const where = `customization.meta[${index}]`;
    const m = this.mapping(value, where, ['key', 'value'], 3);
    return { key: this.metaKey(m.key, `${where}.key`), value: this.text(m.value, `${where}.value`, 4) };
  }

  /** A uint8, written as Go's ParseInt reads it (10, 0xa, 0o12, 0b1010); a plain null is 0. */
  private metaKey(value: unknown, where: string): number {
    this.visit(4);
    if (value === undefined || value === null || isNullPlain(value)) return 0;
    const plain = value instanceof PlainScalar ? value.text.replaceAll('_', '') : undefined;
    const n = plain !== undefined ? goInteger(plain) : undefined;
    if (n === undefined || n < 0 || n > 255)
      this.fail(`${where} must be a whole number from 0 to 255 (e.g. 10 or 0xa)`);
    return n;
  }

  private overlay(value: unknown): SchematicOverlay {
    const o = this.mapping(value, 'overlay', ['image', 'name', 'options'], 1);
    const overlay: SchematicOverlay = {
      image: this.text(o.image, 'overlay.image', 2),
      name: this.text(o.name, 'overlay.name', 2),
    };
    if (o.options !== undefined && o.options !== null && !isNullPlain(o.options)) {
      const options = this.anyValue(o.options, 'overlay.options', 2);
      if (options.kind !== 'map') this.fail('overlay.options must be a mapping');
      overlay.options = options;
    }
    return overlay;
  }

  /** A value decoded into Go's `any` and written back: typed as yaml.v3 types plain scalars. */
  private anyValue(value: unknown, where: string, depth: number): YamlNode {
    this.visit(depth);
    if (value === null || value === undefined) return { kind: 'plain', text: 'null' };
    if (typeof value === 'string') return { kind: 'string', value };
    if (value instanceof PlainScalar) return this.plainAny(value.text, where);
    if (Array.isArray(value))
      return { kind: 'seq', items: value.map((v, i) => this.anyValue(v, `${where}[${i}]`, depth + 1)) };
    const entries = Object.entries(value as Mapping);
    if (entries.length > MAX_LIST) this.fail(`${where} has more than ${MAX_LIST} keys`);
    for (const [key] of entries)
      if (!/^[A-Za-z]{1,64}$/.test(key))
        this.fail(
          `${where} key "${printable(key)}": only keys of letters can be put in the Image Factory's order offline; get the ID from the factory (POST /schematics) and pass --talos-schematic-id`,
        );
    // yaml.v3 writes a Go map's keys sorted; for keys of letters only that is code-point order.
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { kind: 'map', entries: entries.map(([k, v]) => [k, this.anyValue(v, `${where}.${k}`, depth + 1)]) };
  }

  /** A plain scalar in `any`: null, a bool, an integer, or a string; floats and times are refused. */
  private plainAny(text: string, where: string): YamlNode {
    if (/^(~|null|Null|NULL)$/.test(text)) return { kind: 'plain', text: 'null' };
    if (/^(true|True|TRUE)$/.test(text)) return { kind: 'plain', text: 'true' };
    if (/^(false|False|FALSE)$/.test(text)) return { kind: 'plain', text: 'false' };
    const n = goBigInteger(text.replaceAll('_', ''));
    if (n !== undefined) return { kind: 'plain', text: n.toString() };
    if (/^[-+.0-9]/.test(text) && !readsBackAsString(text))
      this.fail(
        `${where} "${printable(text)}" reads as a number or a time, which the Image Factory writes in Go's own format; quote it if it is a text, or get the ID from the factory and pass --talos-schematic-id`,
      );
    return { kind: 'string', value: text };
  }
}

/** A plain `~`, `null`, `Null`, `NULL` (or nothing): yaml.v3 leaves the field at its zero value. */
function isNullPlain(value: unknown): boolean {
  return value instanceof PlainScalar && /^(~|null|Null|NULL|)$/.test(value.text);
}

/** Go's strconv.ParseInt(text, 0, 64) for a META key, or undefined. */
function goInteger(text: string): number | undefined {
  const n = goBigInteger(text);
  return n !== undefined && n >= -(2n ** 63n) && n < 2n ** 63n ? Number(n) : undefined;
}

/** Integers with Go's base prefixes (0x, 0o, 0b, a leading 0 for octal), within 64 bits; else undefined. */
function goBigInteger(text: string): bigint | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  let digits = m[2]!;
  if (/^0[0-7]+$/.test(digits)) digits = `0o${digits.slice(1)}`;
  const magnitude = BigInt(digits.toLowerCase());
  const n = m[1] === '-' ? -magnitude : magnitude;
  return n >= -(2n ** 63n) && n <= 2n ** 64n - 1n ? n : undefined;
}
