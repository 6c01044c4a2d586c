import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { runCli, tempDir, unexpectedOutput } from '../helpers/cli.js';

let images: SampleImage[];
let work: { path: string; remove: () => Promise<void> };
const running: RunningRegistry[] = [];

async function seeded(opts: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
  const reg = await startRegistry(opts);
  running.push(reg);
  await seedRegistry(reg, images.slice(0, 3));
  return reg;
}

/** A Docker config.json as `docker login` writes it. */
function authfile(name: string, host: string, user: string, password: string): string {
  const file = join(work.path, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }),
  );
  return file;
}

const refs = (reg: RunningRegistry) => images.slice(0, 3).map((i) => `${reg.host}/${i.repository}:${i.tag}`);

beforeAll(async () => {
  work = await tempDir();
  images = await generateSampleImages(join(work.path, 'samples'));
});

afterAll(async () => {
  for (const r of running) await r.stop();
  await work?.remove();
});

describe('credentials and TLS on export', () => {
  it('HTTPS with a private CA: works with --ca-file, and says how without it', async () => {
    const reg = await seeded({ tls: true });
    const out = join(work.path, 'tls.tar');
    const ok = await runCli([
      'export',
      ...refs(reg),
      '--ca-file',
      reg.caFile!,
      '-o',
      out,
      '--cache-dir',
      join(work.path, 'c1'),
      '-q',
    ]);
    expect(unexpectedOutput(ok.stderr)).toEqual([]);
    expect(ok.code).toBe(0);
    const bad = await runCli([
      'export',
      ...refs(reg),
      '-o',
      join(work.path, 'tls-bad.tar'),
      '--retries',
      '0',
      '-q',
      '--cache-dir',
      join(work.path, 'c1b'),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/TLS certificate verification failed/);
    expect(bad.stderr).toContain('--ca-file');
  });

  it('htpasswd Basic auth from a Docker config.json; wrong credentials fail in one line without echoing them', async () => {
    const reg = await seeded({ auth: 'htpasswd' });
    const ok = await runCli([
      'export',
      ...refs(reg),
      '--plain-http',
      '--authfile',
      authfile('good', reg.host, reg.username!, reg.password!),
      '-o',
      join(work.path, 'basic.tar'),
      '--cache-dir',
      join(work.path, 'c2'),
      '-q',
    ]);
    expect(unexpectedOutput(ok.stderr)).toEqual([]);
    expect(ok.code).toBe(0);
    const secret = 'wrong-Secret-123';
    const out = join(work.path, 'basic-bad.tar');
    const bad = await runCli([
      'export',
      ...refs(reg),
      '--plain-http',
      '--authfile',
      authfile('bad', reg.host, reg.username!, secret),
      '-o',
      out,
      '--cache-dir',
      join(work.path, 'c2b'),
      '-q',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/401/);
    expect(bad.stderr).toContain(reg.host);
    expect(bad.stderr + bad.stdout).not.toContain(secret);
    expect(bad.stderr + bad.stdout).not.toContain(Buffer.from(`${reg.username}:${secret}`).toString('base64'));
    expect(existsSync(out)).toBe(false);
    const none = await runCli([
      'export',
      ...refs(reg),
      '--plain-http',
      '-o',
      out,
      '--cache-dir',
      join(work.path, 'c2c'),
      '-q',
    ]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/requires credentials|no credentials/);
  });

  it('Bearer token flow against the registry token auth mode, with tokens cached per scope', async () => {
    const reg = await seeded({ auth: 'token' });
    const out = join(work.path, 'token.tar');
    const before = reg.tokenServer!.issued;
    const ok = await runCli([
      'export',
      ...refs(reg),
      '--plain-http',
      '--authfile',
      authfile('token', reg.host, reg.username!, reg.password!),
      '-o',
      out,
      '--cache-dir',
      join(work.path, 'c3'),
      '--json',
    ]);
    expect(ok.code).toBe(0);
    const issued = reg.tokenServer!.issued - before;
    expect(issued).toBeGreaterThanOrEqual(1);
    // One token per repository scope, not one per request.
    expect(issued).toBeLessThanOrEqual(refs(reg).length);
    const verify = await runCli(['verify', out]);
    expect(verify.code).toBe(0);
    const bad = await runCli([
      'export',
      ...refs(reg),
      '--plain-http',
      '--authfile',
      authfile('token-bad', reg.host, reg.username!, 'nope'),
      '-o',
      join(work.path, 'token-bad.tar'),
      '--cache-dir',
      join(work.path, 'c3b'),
      '-q',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/authentication failed|401/);
    expect(
      bad.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('airgap-bundle:')),
    ).toHaveLength(1);
  });

  it('anonymous Bearer tokens where the token server allows anonymous pull', async () => {
    const reg = await seeded({ auth: 'token', allowAnonymousPull: true });
    const res = await runCli([
      'export',
      ...refs(reg),
      '--plain-http',
      '-o',
      join(work.path, 'anon.tar'),
      '--cache-dir',
      join(work.path, 'c4'),
      '-q',
    ]);
    expect(unexpectedOutput(res.stderr)).toEqual([]);
    expect(res.code).toBe(0);
  });
});
