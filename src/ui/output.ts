import { terminalSafe } from '../util/text.js';

/**
 * Characters JSON.stringify leaves raw that a terminal or a JavaScript parser
 * acts on: DEL, the C1 controls (U+0080–U+009F, 8-bit CSI among them), the
 * line/paragraph separators and the bidi overrides.
 */
const RAW_IN_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `value` as JSON text in which every character outside printable ASCII that
 * could act on a terminal is a `\uXXXX` escape. The characters replaced can only
 * occur inside JSON strings, where the escape means the same character, so the
 * text parses back to exactly `value`.
 */
export function jsonText(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(
    RAW_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A `--json` result, alone on stdout. */
export function writeJson(value: unknown): void {
  process.stdout.write(`${jsonText(value)}\n`);
}

/** Human-readable text for stdout (results a person reads or pipes). */
export function printOut(text: string): void {
  process.stdout.write(terminalSafe(text));
}

/** Human-readable text for stderr (progress, warnings, errors). */
export function printErr(text: string): void {
  process.stderr.write(terminalSafe(text));
}

/**
 * Errors writing stdout or stderr. A reader that went away (`| head`, a closed
 * terminal) is not a failure of the command: nothing more can be delivered, and
 * the command keeps its exit code. Any other error (a full disk under `> file`)
 * means the output is incomplete, which `onLost` is told. Without a listener
 * Node would turn either into an uncaught exception with a stack trace.
 */
export function watchStandardStreams(onLost: (err: Error) => void): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') onLost(err);
    });
  }
}

/**
 * Resolves once everything written to `stream` so far has been handed to the
 * operating system. Writes to a pipe are asynchronous in Node: exiting before
 * this cuts the output at the pipe's buffer size (64 KiB on Linux). An empty
 * write's callback runs after every write queued before it.
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) {
      resolve();
      return;
    }
    stream.write('', () => resolve());
  });
}

/**
 * Waits until stdout and stderr are written out. There is no time limit: a
 * reader that is slow still receives the whole output, and a reader that goes
 * away ends the wait with EPIPE.
 */
export async function flushStandardStreams(): Promise<void> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
}
