// The Reporter in a real process: what reaches the real stdout and stderr is escaped, and the
// --json result parses back to the value given.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/;

describe('terminal output', () => {
  it('the Reporter escapes every line it prints, and its --json result, in a real process', () => {
    // A child process, so that the real stdout and stderr are what is checked.
    const script = [
      "import { Reporter } from './src/ui/reporter.ts';",
      'const human = new Reporter({ quiet: false, json: false, tty: false });',
      "human.info('verifying x\\u001b]0;pwned\\u0007\\nbundle intact\\u009b');",
      "human.warn('bell\\u0007\\r');",
      "new Reporter({ quiet: false, json: true, tty: false }).result({ reference: 'r\\u009b2J\\u2028' });",
    ].join('\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '../..'),
      encoding: 'utf8',
    });
    expect(child.status, child.stderr).toBe(0);
    expect(child.stderr).toBe('verifying x\\x1b]0;pwned\\x07\nbundle intact\\x9b\nwarning: bell\\x07\\r\n');
    expect(child.stdout).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(child.stdout)).toEqual({ reference: 'r\u009b2J\u2028' });
  });
});
