// `--version --json` of the CLI under test: what a reviewer checks first. Run against the script and,
// in the executable's pass (AIRGAP_BUNDLE_CLI), against the single executable: the report must name
// the runtime each one really runs on, which also shows the pass tests what it claims to.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_VERSION } from '../../scripts/lib/package-node.js';
import { BUNDLE_FORMAT, FORMAT_VERSION } from '../../src/bundle/format.js';
import { CLI_RUNTIME, runCli } from '../helpers/cli.js';

const ROOT = resolve(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('--version --json', () => {
  it(`names the tool, the bundle format and the runtime (${CLI_RUNTIME})`, async () => {
    const res = await runCli(['--version', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe('');
    const executable = CLI_RUNTIME === 'executable';
    expect(JSON.parse(res.stdout)).toEqual({
      name: 'airgap-bundle',
      version: VERSION,
      bundleFormat: BUNDLE_FORMAT,
      bundleFormatVersion: FORMAT_VERSION,
      // The executable carries the pinned Node; the script runs on the Node that started it.
      node: executable ? NODE_VERSION : process.versions.node,
      singleExecutable: executable,
      platform: `${process.platform}-${process.arch}`,
    });
    expect(res.stdout.endsWith('}\n')).toBe(true);
  });

  it('--version alone stays the bare version, for scripts that read it', async () => {
    const res = await runCli(['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`${VERSION}\n`);
  });
});
