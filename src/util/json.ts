/**
 * JSON from a bundle or a registry is attacker input. `JSON.parse` itself copes
 * with any nesting, but every walk over the result (ours, a validator, a
 * serialiser) recurses: a document nested 100,000 levels deep overflows the
 * stack there. The depth is therefore checked on the raw text first, in one
 * linear pass, and deep documents are refused before they are parsed.
 */

export class JsonLimitError extends Error {
  override name = 'JsonLimitError';
}

/** Deeper than any manifest, index or metadata document needs (they nest 5 levels or fewer). */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/** The deepest nesting of objects and arrays in `bytes`, ignoring brackets inside strings. */
export function jsonDepth(bytes: Uint8Array, stopAbove = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > stopAbove) return deepest;
      }
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return deepest;
}

/** Parses JSON nested at most `maxDepth` levels; deeper input throws JsonLimitError unparsed. */
export function parseBoundedJson(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): unknown {
  if (jsonDepth(bytes, maxDepth) > maxDepth) throw new JsonLimitError(`JSON nested deeper than ${maxDepth} levels`);
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
}
