/**
 * Charts and files the bundle carries beside images, recorded under
 * CARRIED_REGISTRY (see src/reference/mapping.ts).
 */
export { CARRIED_REGISTRY } from '../reference/mapping.js';

/** Longest file or chart name a bundle may carry: a file name on every common file system. */
export const MAX_CARRIED_NAME_LENGTH = 255;

/**
 * Whether `name` is a plain file name, safe to join to a folder, to put in a
 * URL path and to print: no `/` or `\`, not `.` or `..`, no control
 * characters, bounded. Every name of a carried file passes this where it is
 * given (export) and where it is read (the bundle's metadata), and `files` and
 * `serve` use only names that did.
 */
export function isPlainFileName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= MAX_CARRIED_NAME_LENGTH &&
    name !== '.' &&
    name !== '..' &&
    !/[/\\]/.test(name) &&
    // C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
    !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)
  );
}
