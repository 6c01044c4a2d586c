import { writeSync } from 'node:fs';
import { terminalSafe } from './text.js';

/**
 * Ctrl-C handling for long commands: remove what must not survive (partial
 * files), say how to resume, exit 130. Cleanups run synchronously because the
 * process is about to exit.
 */
const cleanups = new Set<() => void>();
let installed = false;
let resumeHint = '';

export function onInterrupt(cleanup: () => void): () => void {
  install();
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

export function setResumeHint(hint: string): void {
  install();
  resumeHint = hint;
}

function install(): void {
  if (installed) return;
  installed = true;
  const handler = (signal: NodeJS.Signals) => {
    for (const c of cleanups) {
      try {
        c();
      } catch {
        // best effort: the next run cleans up stale temporary files as well
      }
    }
    // Written synchronously: the process exits right after, and an asynchronous write to a pipe would be cut.
    try {
      writeSync(process.stderr.fd, terminalSafe(`\ninterrupted (${signal})${resumeHint ? `; ${resumeHint}` : ''}\n`));
    } catch {
      // a reader that went away, or a pipe that is full: exit all the same
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
