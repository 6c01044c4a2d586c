/** A byte range of a blob, both ends inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

// Digits are bounded so a hostile header cannot cost time; 40 digits still reads an absurd
// position as a number past the blob (416, or clamped to its end), as RFC 9110 wants.
const SINGLE_RANGE = /^bytes=(\d{0,40})-(\d{0,40})$/;

/**
 * The one range of a `Range: bytes=…` header. `undefined` means the header is
 * ignored and the whole blob sent, as RFC 9110 allows for anything a server
 * does not support (several ranges, other units, a malformed value);
 * `unsatisfiable` is answered with 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = SINGLE_RANGE.exec(header.trim());
  if (!m) return undefined;
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== '' && Number(last) < start)) return 'unsatisfiable';
  return { start, end };
}
