import { writeSync } from 'node:fs';
import { terminalSafe } from './text.js';

/**
 * Ctrl-C handling for long commands: remove what must not survive (partial
 * files), say how to resume, exit 130. Cleanups run synchronously because the
 * process is about to exit.
 */
const cleanups = new Set<() => void>();
let installed: ((signal: NodeJS.Signals) => void) | undefined;
let resumeHint = '';

/**
 * Runs `cleanup` if the process is interrupted before the returned function is
 * called. The signal handlers stay only while there is something to clean up
 * or a resume hint to give: a command with its own way of stopping (serve)
 * that wrote a file atomically keeps it.
 */
export function onInterrupt(cleanup: () => void): () => void {
  install();
  cleanups.add(cleanup);
  return () => {
    cleanups.delete(cleanup);
    if (cleanups.size === 0 && resumeHint === '') uninstall();
  };
}

export function setResumeHint(hint: string): void {
  install();
  resumeHint = hint;
}

function uninstall(): void {
  if (!installed) return;
  process.off('SIGINT', installed);
  process.off('SIGTERM', installed);
  installed = undefined;
}

function install(): void {
  if (installed) return;
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
  installed = handler;
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
