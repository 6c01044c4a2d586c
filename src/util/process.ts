/** Whether a process exists (one owned by another user counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether files named after process `pid` are garbage: it is another process
 * than this one, and it is gone (killed, or the machine lost power).
 */
export function leftByDeadProcess(pid: number): boolean {
  return Number.isInteger(pid) && pid !== process.pid && !processAlive(pid);
}
