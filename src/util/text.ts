/**
 * Strings from a bundle or a registry are attacker input: before one reaches a
 * terminal, a log line or an error message it goes through `printable`, which
 * shows control characters as visible escapes (`\x1b`, `\n`) instead of letting
 * them act (retitle the window, clear the screen, forge a line), and bounds its
 * length so one absurd string cannot blow up a table or the heap.
 */

/** C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators and bidi overrides. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export const DEFAULT_PRINTABLE_MAX = 200;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `s` with control characters escaped visibly and cut to `max` characters (an ellipsis says so). */
export function printable(s: string, max = DEFAULT_PRINTABLE_MAX): string {
  const cut = s.length > max * 4 ? s.slice(0, max * 4) : s;
  const clean = cut.replace(CONTROL, escapeChar);
  return clean.length > max || cut.length < s.length ? `${clean.slice(0, max)}…` : clean;
}

/** Whether `s` holds any character `printable` would escape. */
export function hasControlCharacters(s: string): boolean {
  CONTROL.lastIndex = 0;
  const found = CONTROL.test(s);
  CONTROL.lastIndex = 0;
  return found;
}

/**
 * The last gate before text leaves the process. Bundle and registry strings are
 * escaped (`printable`) where they are formatted; this gate escapes whatever
 * control character is left in any line, so an escape sequence can never reach
 * a terminal even from a message that missed the first step. Line breaks are
 * the tool's own layout (tables, lists) and are kept.
 */
export function terminalSafe(text: string): string {
  return text
    .split('\n')
    .map((line) => printable(line, Number.POSITIVE_INFINITY))
    .join('\n');
}
