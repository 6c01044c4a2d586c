// talos-patch end to end: the CLI run as a user runs it on a small bundle, its exit codes (0 written,
// 2 a wrong setting, nothing written) and the file it leaves, held against the published schema of
// the Talos version asked.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';
import { loadTalosSchema, schemaErrors } from '../helpers/talos-schema.js';
import { writeTinyBundle } from '../helpers/tiny-bundle.js';

const talosPatch = (args: string[]) => runCli(['talos-patch', ...args]);

let work: { path: string; remove: () => Promise<void> };
let bundle: string;

beforeAll(async () => {
  work = await tempDir('talos-patch-');
  bundle = join(work.path, 'tiny.tar');
  await writeTinyBundle(join(work.path, 'build'), bundle);
});
afterAll(() => work.remove());

describe('talos-patch', () => {
  it('writes the air-gap patch of the issue example for Talos 1.12, every document in its schema', async () => {
    const out = join(work.path, 'airgap.yaml');
    const r = await talosPatch([
      '--bundle',
      bundle,
      '--endpoint',
      'http://10.5.0.1:6000',
      '--talos-version',
      'v1.12',
      '--time-server',
      '10.5.0.1',
      '--nameserver',
      '10.5.0.53',
      '--discovery',
      'off',
      '--image-cache',
      '-o',
      out,
    ]);
    expect(r.stderr).toMatch(/wrote .*airgap\.yaml/);
    expect(r.code).toBe(0);
    const docs = yaml.loadAll(readFileSync(out, 'utf8')) as Array<Record<string, unknown>>;
    expect(docs.map((d) => d.kind ?? 'v1alpha1')).toEqual([
      'v1alpha1',
      'RegistryMirrorConfig',
      'TimeSyncConfig',
      'ResolverConfig',
    ]);
    expect(docs[0]).toEqual({
      machine: { features: { imageCache: { localEnabled: true } } },
      cluster: { discovery: { enabled: false } },
    });
    const schema = loadTalosSchema('v1.12');
    expect(docs.flatMap((d) => schemaErrors(schema, d))).toEqual([]);
    expect(statSync(out).mode & 0o777).toBe(0o644);
  });

  it('without --talos-version writes the newest style and says so', async () => {
    const r = await talosPatch(['--bundle', bundle, '--endpoint', 'http://10.5.0.1:6000', '--image-cache']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/no --talos-version: written for Talos v1\.14 and later/);
    const docs = yaml.loadAll(r.stdout) as Array<Record<string, unknown>>;
    expect(docs.map((d) => d.kind)).toEqual(['RegistryMirrorConfig', 'ImageCacheConfig']);
    const schema = loadTalosSchema('v1.14');
    expect(docs.flatMap((d) => schemaErrors(schema, d))).toEqual([]);
  });

  it('prints the talosctl flags and names the settings that need the patch file', async () => {
    const r = await talosPatch([
      '--bundle',
      bundle,
      '--endpoint',
      'http://10.5.0.1:6000',
      '--format',
      'talosctl',
      '--time-server',
      'ntp.lan',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("--registry-mirror '*=http://10.5.0.1:6000'\n");
    expect(r.stderr).toMatch(/talosctl has no flags for --time-server/);
  });

  it.each([
    [['--endpoint', '10.5.0.1:6000'], /--endpoint "10\.5\.0\.1:6000" has no scheme/],
    [
      ['--endpoint', 'http://10.5.0.1:6000', '--discovery', 'off', '--discovery-endpoint', 'https://d.lan'],
      /--discovery off and --discovery-endpoint/,
    ],
    [['--endpoint', 'http://10.5.0.1:6000', '--time-server', 'not a host'], /--time-server "not a host"/],
    [['--endpoint', 'http://10.5.0.1:6000', '--nameserver', 'dns.lan'], /--nameserver "dns\.lan" is not an IP address/],
    [
      ['--endpoint', 'http://10.5.0.1:6000', '--talos-version', 'v1.8', '--image-cache'],
      /--image-cache needs Talos v1\.9 or later/,
    ],
  ])('exit 2 and no file for %j', async (args, message) => {
    const out = join(work.path, `refused-${args.length}.yaml`);
    const r = await talosPatch(['--bundle', bundle, ...args, '-o', out]);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});
