/**
 * The YAML text Go's gopkg.in/yaml.v3 `Marshal` writes for a value, for the
 * small set of shapes a schematic holds: the Image Factory's schematic ID is
 * the SHA-256 of exactly these bytes, so every choice below (indentation,
 * where a sequence's dash goes, which scalar style, which escapes) follows
 * that emitter, not what would merely be valid YAML. yaml.v3 indents by 4,
 * never folds long lines, and writes non-ASCII text as it is.
 */

/** A node of the document to write. */
export type YamlNode = YamlMap | YamlSeq | YamlString | YamlPlainValue;

/** A mapping, in the order its entries are written. */
export interface YamlMap {
  kind: 'map';
  entries: Array<[string, YamlNode]>;
}

export interface YamlSeq {
  kind: 'seq';
  items: YamlNode[];
}

/** A Go string: its style is chosen as yaml.v3 chooses it. */
export interface YamlString {
  kind: 'string';
  value: string;
}

/** An integer, a boolean or null: written plain, as Go formats it. */
export interface YamlPlainValue {
  kind: 'plain';
  text: string;
}

/** A value the emitter here cannot write exactly as yaml.v3 would. */
export class CanonicalYamlError extends Error {
  override name = 'CanonicalYamlError';
}

const BEST_INDENT = 4;

/** The bytes `yaml.Marshal` writes for a top-level mapping. */
export function canonicalYaml(root: YamlMap): string {
  if (root.entries.length === 0) return '{}\n';
  const out: string[] = [];
  writeMapEntries(out, root, 0, false);
  return out.join('');
}

/**
 * The indentation of a node nested in a collection at `indent`: yaml.v3 skips
 * the "- " of a sequence item, and otherwise aligns to the next multiple of 4.
 */
function nestedIndent(indent: number, inSequenceItem: boolean): number {
  if (inSequenceItem) return indent + 2;
  return BEST_INDENT * Math.floor((indent + BEST_INDENT) / BEST_INDENT);
}

/** Mapping entries at `indent`; the first one continues the current line after "- " when `afterDash`. */
function writeMapEntries(out: string[], map: YamlMap, indent: number, afterDash: boolean): void {
  map.entries.forEach(([key, value], i) => {
    if (!(afterDash && i === 0)) out.push(' '.repeat(indent));
    out.push(simpleKey(key), ':');
    writeValue(out, value, indent, false);
  });
}

/** Sequence items at `indent`, each on its own line. */
function writeSeqItems(out: string[], seq: YamlSeq, indent: number): void {
  for (const item of seq.items) {
    out.push(' '.repeat(indent), '-');
    if (item.kind === 'seq' && item.items.length > 0)
      throw new CanonicalYamlError(
        'a list directly inside a list cannot be written offline as the Image Factory writes it',
      );
    if (item.kind === 'map' && item.entries.length > 0) {
      out.push(' ');
      writeMapEntries(out, item, indent + 2, true);
    } else writeValue(out, item, indent, true);
  }
}

/**
 * What follows a mapping key's colon or a sequence item's dash: an empty
 * collection in flow style on the same line, a block collection on the next
 * lines, a scalar after one space.
 */
function writeValue(out: string[], node: YamlNode, parentIndent: number, inSequenceItem: boolean): void {
  const indent = nestedIndent(parentIndent, inSequenceItem);
  switch (node.kind) {
    case 'map':
      if (node.entries.length === 0) return void out.push(' {}\n');
      out.push('\n');
      return writeMapEntries(out, node, indent, false);
    case 'seq':
      if (node.items.length === 0) return void out.push(' []\n');
      out.push('\n');
      return writeSeqItems(out, node, indent);
    case 'plain':
      return void out.push(' ', node.text, '\n');
    case 'string':
      return void out.push(' ', stringScalar(node.value, indent), '\n');
  }
}

/** A mapping key: the keys written here are plain words (checked where they are read). */
function simpleKey(key: string): string {
  const style = stringStyle(key, true);
  if (style === 'plain') return key;
  if (style === 'single') return singleQuoted(key);
  return doubleQuoted(key);
}

/** A string value, with the block-literal body indented to `indent` when it spans lines. */
function stringScalar(value: string, indent: number): string {
  const style = stringStyle(value, false);
  if (style === 'plain') return value;
  if (style === 'single') return singleQuoted(value);
  if (style === 'double') return doubleQuoted(value);
  return literal(value, indent);
}

type ScalarStyle = 'plain' | 'single' | 'double' | 'literal';

/**
 * The style yaml.v3 writes a string in: its encoder asks for a literal block
 * when the string holds a newline, plain when the text would read back as a
 * string, double quotes otherwise; its emitter then falls back from plain to
 * single quotes to double quotes (and from literal to double quotes) as the
 * characters require.
 */
function stringStyle(value: string, simpleKeyContext: boolean): ScalarStyle {
  checkRepresentable(value);
  const a = analyse(value);
  let style: ScalarStyle;
  if (value.includes('\n')) style = 'literal';
  else if (readsBackAsString(value)) style = 'plain';
  else style = 'double';
  if (simpleKeyContext && a.multiline) style = 'double';
  if (style === 'plain') {
    if (!a.blockPlainAllowed) style = 'single';
    if (value.length === 0 && simpleKeyContext) style = 'single';
  }
  if (style === 'single' && !a.singleQuotedAllowed) style = 'double';
  if (style === 'literal' && (!a.blockAllowed || simpleKeyContext)) style = 'double';
  if (style === 'literal' && keepsTrailingBreaks(value))
    throw new CanonicalYamlError(
      'a text ending in more than one line break cannot be written offline as the Image Factory writes it',
    );
  return style;
}

/** Characters whose handling in yaml.v3 is not reproduced here: refused rather than guessed. */
function checkRepresentable(value: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff)
      throw new CanonicalYamlError('a text holds a lone UTF-16 surrogate (not valid UTF-8)');
    if (c === 0x2028 || c === 0x2029)
      throw new CanonicalYamlError('a text holds a Unicode line or paragraph separator (U+2028/U+2029)');
  }
}

interface ScalarAnalysis {
  multiline: boolean;
  blockPlainAllowed: boolean;
  singleQuotedAllowed: boolean;
  blockAllowed: boolean;
}

const isBreak = (cp: number) => cp === 0x0a || cp === 0x0d || cp === 0x85;
const isSpace = (cp: number) => cp === 0x20;
const isBlank = (cp: number) => cp === 0x20 || cp === 0x09;

/** libyaml's printable set, as yaml.v3 tests it on UTF-8 bytes (no code point past U+FFFD). */
function isPrintable(cp: number): boolean {
  return (
    cp === 0x0a ||
    (cp >= 0x20 && cp <= 0x7e) ||
    (cp >= 0xa0 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd && cp !== 0xfeff)
  );
}

/** yaml.v3's scalar analysis (emitterc.go, yaml_emitter_analyze_scalar), for block context. */
function analyse(value: string): ScalarAnalysis {
  const cps = Array.from(value, (ch) => ch.codePointAt(0)!);
  if (cps.length === 0)
    return { multiline: false, blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: false };
  let blockIndicators = value.startsWith('---') || value.startsWith('...');
  let lineBreaks = false;
  let special = false;
  let tabs = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let precededByWhitespace = true;
  let previousSpace = false;
  let previousBreak = false;
  cps.forEach((cp, i) => {
    const next = cps[i + 1];
    const followedByWhitespace = next === undefined || isBlank(next) || isBreak(next);
    const ch = String.fromCodePoint(cp);
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) blockIndicators = true;
      else if ((ch === '?' || ch === ':' || ch === '-') && followedByWhitespace) blockIndicators = true;
    } else if ((ch === ':' && followedByWhitespace) || (ch === '#' && precededByWhitespace)) blockIndicators = true;
    if (cp === 0x09) tabs = true;
    else if (!isPrintable(cp)) special = true;
    if (isSpace(cp)) {
      if (i === 0) leadingSpace = true;
      if (i === cps.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(cp)) {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (i === cps.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlank(cp) || isBreak(cp);
  });
  const plainBlocked =
    leadingSpace || leadingBreak || trailingSpace || trailingBreak || breakSpace || spaceBreak || tabs || special;
  return {
    multiline: lineBreaks,
    blockPlainAllowed: !(plainBlocked || lineBreaks || blockIndicators),
    singleQuotedAllowed: !(breakSpace || spaceBreak || tabs || special),
    blockAllowed: !(trailingSpace || spaceBreak || special),
  };
}

/** yaml.v3 resolves these plain words to null, booleans, infinities, NaN or the merge key. */
const NON_STRING_WORDS = new Set(
  [
    '~ null Null NULL true True TRUE false False FALSE',
    '.nan .NaN .NAN .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF <<',
  ]
    .join(' ')
    .split(' '),
);
/** YAML 1.1 booleans: yaml.v3 reads them as strings but quotes them when writing. */
const OLD_BOOLS = new Set('y Y yes Yes YES on On ON n N no No NO off Off OFF'.split(' '));
const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;
const YAML_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const DOT_FLOAT = /^\.[0-9]+([eE][-+]?[0-9]+)?$/;
const GO_INT = /^[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/;
const TIMESTAMP =
  /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]{1,9})?(?:Z|[-+][0-9]{2}:[0-9]{2}))|(?: [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]{1,9})?))?$/;

/** Whether yaml.v3 would read `value`, written plain, back as the same string (its encoder's canUsePlain). */
export function readsBackAsString(value: string): boolean {
  if (value === '' || NON_STRING_WORDS.has(value) || OLD_BOOLS.has(value) || BASE60_FLOAT.test(value)) return false;
  return !resolvesToNumberOrTime(value);
}

/** yaml.v3's resolve for plain text starting with a digit, a sign or a dot. */
function resolvesToNumberOrTime(value: string): boolean {
  const first = value[0]!;
  if (first === '.') return DOT_FLOAT.test(value);
  if (!/[0-9+-]/.test(first)) return false;
  if (TIMESTAMP.test(value)) return true;
  const plain = value.replaceAll('_', '');
  if (GO_INT.test(plain)) return fitsUint64(plain);
  return YAML_FLOAT.test(plain);
}

/** Go's ParseInt/ParseUint fail past 64 bits; a decimal that long still reads as a float. */
function fitsUint64(plain: string): boolean {
  const unsigned = plain.replace(/^[-+]/, '');
  if (/^[1-9]/.test(unsigned)) return true; // decimal: an int, or else a float, never a string
  const prefixed = /^0[xXoObB]/.test(unsigned) ? unsigned : `0o${unsigned.slice(1) || '0'}`;
  return BigInt(prefixed.toLowerCase()) <= 0xffff_ffff_ffff_ffffn;
}

function singleQuoted(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

const SHORT_ESCAPES: Record<number, string> = {
  0x00: '0',
  0x07: 'a',
  0x08: 'b',
  0x09: 't',
  0x0a: 'n',
  0x0b: 'v',
  0x0c: 'f',
  0x0d: 'r',
  0x1b: 'e',
  0x22: '"',
  0x5c: '\\',
  0x85: 'N',
  0xa0: '_',
};

/** yaml.v3's double-quoted writer (no line folding: yaml.v3 sets no width). */
function doubleQuoted(value: string): string {
  let out = '"';
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    const escape = !isPrintable(cp) || cp === 0xfeff || isBreak(cp) || cp === 0x22 || cp === 0x5c;
    if (!escape) out += ch;
    else if (SHORT_ESCAPES[cp] !== undefined) out += `\\${SHORT_ESCAPES[cp]}`;
    else if (cp <= 0xff) out += `\\x${hex(cp, 2)}`;
    else if (cp <= 0xffff) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return `${out}"`;
}

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');

/** Whether the literal would need keep chomping (`|+`): yaml.v3 then ends the document open. */
function keepsTrailingBreaks(value: string): boolean {
  return value === '\n' || value.endsWith('\n\n');
}

/** A literal block: `|` with its hints, then each line at `indent`; empty lines stay empty. */
function literal(value: string, indent: number): string {
  const indentHint = value.startsWith(' ') || value.startsWith('\n') ? String(BEST_INDENT) : '';
  const chompHint = value.endsWith('\n') ? '' : '-';
  const pad = ' '.repeat(indent);
  const body = value.endsWith('\n') ? value.slice(0, -1) : value;
  const lines = body.split('\n').map((line) => (line === '' ? '' : pad + line));
  // The caller ends the scalar with one line break, which is the literal's own last one.
  return `|${indentHint}${chompHint}\n${lines.join('\n')}`;
}
