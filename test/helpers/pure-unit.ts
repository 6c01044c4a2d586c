// Setup of the unit project: a unit test starts no child process and no server. Each way to do
// either throws here, naming the test suite's rule, so a test that needs one is seen at once
// and goes to test/e2e.
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

const refuse = (what: string) => () => {
  throw new Error(`${what} in a unit test: tests that start processes or servers belong in test/e2e`);
};
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const)
  (childProcess as unknown as Record<string, unknown>)[name] = refuse(`child_process.${name}`);
net.Server.prototype.listen = refuse('listening on a socket') as never;
// Named imports of node:child_process (`import { spawn } from …`) see the replacements too.
syncBuiltinESMExports();
