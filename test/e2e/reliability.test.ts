// Faults injected between the tool and real registries, in both directions. Transient
// faults within the retry budget must leave a correct result (digests as skopeo sees them upstream);
// persistent ones must fail cleanly (exit 1, one error naming what and why, nothing half-written,
// no tag that cannot be pulled). Credentials never leak and never cause a storm of requests.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi, type ExpectStatic } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { startBlobCdn } from '../helpers/blob-cdn.js';
import { runCli as runCliUnlimited, tempDir, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type Fault, type FaultProxy, type FaultRule } from '../helpers/fault-proxy.js';
import { tagDigests, unpullableTags } from '../helpers/registry-state.js';
import { startWireProxy, type WireAction, type WireProxy, type WireRule } from '../helpers/wire-proxy.js';
import { metadataOf } from '../helpers/metadata.js';

// The cases below run side by side (each with its own proxy, folders and registry state); they
// spend their time waiting on back-off timers and watchdogs, not on the CPU. At most CLI_SLOTS runs
// of the tool are alive at once, so a 2-core machine is not swamped.
vi.setConfig({ maxConcurrency: 8 });
const CLI_SLOTS = 6;
let cliRunning = 0;
const cliWaiting: Array<() => void> = [];
async function runCli(...args: Parameters<typeof runCliUnlimited>): ReturnType<typeof runCliUnlimited> {
  if (cliRunning >= CLI_SLOTS) await new Promise<void>((resolve) => cliWaiting.push(resolve));
  cliRunning++;
  try {
    return await runCliUnlimited(...args);
  } finally {
    cliRunning--;
    cliWaiting.shift()?.();
  }
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const SUBSET = ['coredns/coredns', 'kube-scheduler', 'library/busybox'];

let work: { path: string; remove: () => Promise<void> };
let samples: SampleImage[];
let images: SampleImage[];
let upstream: RunningRegistry;
let dest: RunningRegistry;
/** repository → digest of the top manifest, as skopeo reads it from the upstream registry. */
const upstreamDigest: Record<string, string> = {};
let busybox: SampleImage;
/** The largest layer of busybox: the target of faults that should break one image only. */
let busyboxLayer: string;
let bundle: string;
const started: Array<{ stop(): Promise<void> }> = [];

async function registry(opts?: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
  const r = await startRegistry(opts);
  started.push(r);
  return r;
}
async function faultProxy(target: string, rules: FaultRule[] = []): Promise<FaultProxy> {
  const p = await startFaultProxy(target, rules);
  started.push(p);
  return p;
}
async function wireProxy(target: string, rules: WireRule[] = []): Promise<WireProxy> {
  const p = await startWireProxy(target, rules);
  started.push(p);
  return p;
}

function skopeoRaw(reg: RunningRegistry, ref: string): Buffer {
  return execFileSync('skopeo', [
    '--insecure-policy',
    'inspect',
    '--raw',
    ...reg.skopeoArgs(),
    `docker://${reg.host}/${ref}`,
  ]);
}

const isBlobGet = (m: string, p: string) => m === 'GET' && p.includes('/blobs/sha256:');
const isTagManifestGet = (m: string, p: string) =>
  m === 'GET' && p.includes('/manifests/') && !/\/manifests\/sha256[:-]/.test(p);
const isDigestManifestGet = (m: string, p: string) => m === 'GET' && p.includes('/manifests/sha256:');
const isUploadPut = (m: string, p: string) => m === 'PUT' && p.includes('/blobs/uploads/');
const hexOf = (digest: string) => digest.slice('sha256:'.length);

beforeAll(async () => {
  work = await tempDir('airgap-reliability-');
  samples = await generateSampleImages(join(work.path, 'samples'), { layerBytes: 16 * 1024 });
  images = samples.filter((i) => SUBSET.includes(i.repository));
  busybox = images.find((i) => i.repository === 'library/busybox')!;
  [upstream, dest] = await Promise.all([registry(), registry()]);
  await seedRegistry(upstream, images);
  for (const img of images)
    upstreamDigest[img.repository] = sha256(skopeoRaw(upstream, `${img.repository}:${img.tag}`));
  const manifest = JSON.parse(skopeoRaw(upstream, `${busybox.repository}:${busybox.tag}`).toString()) as {
    layers: Array<{ digest: string; size: number }>;
  };
  busyboxLayer = [...manifest.layers].sort((a, b) => b.size - a.size)[0]!.digest;
  bundle = join(work.path, 'for-import.tar');
  const res = await runCli([
    'export',
    ...images.map((i) => `${upstream.host}/${i.repository}:${i.tag}`),
    '-o',
    bundle,
    '--plain-http',
    '--cache-dir',
    join(work.path, 'cache-import'),
    '-q',
  ]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
});

afterAll(async () => {
  for (const s of started.reverse()) await s.stop();
  await work?.remove();
});

/** Exports `refs` through `host` into a folder of its own (bundle and cache), as a user would. */
async function exportVia(
  host: string,
  name: string,
  args: string[] = [],
  refs: SampleImage[] = images,
  plainHttp = true,
): Promise<CliResult & { out: string }> {
  const dir = join(work.path, name);
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'b.tar');
  const res = await runCli([
    'export',
    ...refs.map((i) => `${host}/${i.repository}:${i.tag}`),
    '-o',
    out,
    ...(plainHttp ? ['--plain-http'] : []),
    '--cache-dir',
    join(dir, 'cache'),
    ...args,
  ]);
  return { ...res, out };
}

/** The bundle is complete and records exactly the digests the upstream registry serves. */
async function expectUpstreamContent(expect: ExpectStatic, out: string, refs: SampleImage[] = images): Promise<void> {
  const recorded = Object.fromEntries(metadataOf(out).images.map((i) => [i.repository, i.digest]));
  expect(recorded).toEqual(Object.fromEntries(refs.map((i) => [i.repository, upstreamDigest[i.repository]])));
  const verify = await runCli(['verify', out, '-q']);
  expect(verify.stderr).toBe('');
  expect(verify.code).toBe(0);
}

/** Exit 1, one error line without a stack, and nothing under the bundle's name or beside it. */
function expectCleanExportFailure(expect: ExpectStatic, res: CliResult & { out: string }): void {
  expect(res.stderr.split('\n').filter((l) => l.startsWith('airgap-bundle:'))).toHaveLength(1);
  expect(res.stderr).not.toMatch(/^\s+at \S+ \(/m);
  expect(existsSync(res.out)).toBe(false);
  expect(readdirSync(dirname(res.out)).filter((f) => f !== 'cache')).toEqual([]);
  expect(res.code).toBe(1);
}

const expectedTags = () =>
  Object.fromEntries(images.map((i) => [`${i.repository}:${i.tag}`, upstreamDigest[i.repository]]));

function importVia(host: string, prefix: string, args: string[] = []): Promise<CliResult> {
  return runCli(['import', bundle, '--registry', host, '--plain-http', '--repo-prefix', prefix, ...args]);
}

/** Tags under `prefix/` that cannot be pulled completely. */
async function unpullableUnder(prefix: string): Promise<string[]> {
  return (await unpullableTags(dest.url)).filter((p) => p.startsWith(`${prefix}/`));
}

// Each case has its own proxy and folders: they run side by side, mostly waiting on back-off timers.
describe.concurrent('export from a faulty upstream', () => {
  it('completes with the upstream digests through resets, short bodies, 500/502/503, 429 with Retry-After and a stall', async ({
    expect,
  }) => {
    const proxy = await faultProxy(upstream.url, [
      { match: isBlobGet, fault: { kind: 'reset' }, times: 1 },
      { match: isBlobGet, fault: { kind: 'truncate' }, times: 1 },
      { match: isBlobGet, fault: { kind: 'status', status: 502 }, times: 1 },
      { match: isBlobGet, fault: { kind: 'status', status: 503 }, times: 1 },
      { match: isDigestManifestGet, fault: { kind: 'status', status: 500 }, times: 1 },
      { match: isTagManifestGet, fault: { kind: 'status', status: 429, retryAfter: 1 }, times: 1 },
      { match: isBlobGet, fault: { kind: 'stall' }, times: 1 },
    ]);
    const res = await exportVia(proxy.host, 'transient-mix', ['--timeout', '2', '--json']);
    expect(res.code).toBe(0);
    expect(proxy.requests.filter((r) => r.faulted)).toHaveLength(7);
    await expectUpstreamContent(expect, res.out);
  });

  it('refetches blobs and child manifests whose bytes were damaged in transit (right length, wrong bytes)', async ({
    expect,
  }) => {
    const proxy = await faultProxy(upstream.url, [
      { match: isBlobGet, fault: { kind: 'corrupt' }, times: 3 },
      { match: isDigestManifestGet, fault: { kind: 'corrupt' }, times: 2 },
    ]);
    const res = await exportVia(proxy.host, 'transient-corrupt', ['--json']);
    expect(res.code).toBe(0);
    expect(proxy.requests.filter((r) => r.faulted)).toHaveLength(5);
    await expectUpstreamContent(expect, res.out);
  });

  it('refetches a tag manifest damaged once in transit instead of failing or recording a wrong digest', async ({
    expect,
  }) => {
    // The registry states the digest (Docker-Content-Digest); bytes that do not match it are a
    // transfer error like any other. One flipped byte per image, each once.
    const proxy = await faultProxy(upstream.url, [
      { match: isTagManifestGet, fault: { kind: 'corrupt' }, times: images.length },
    ]);
    const res = await exportVia(proxy.host, 'transient-corrupt-tag', ['--json']);
    expect(proxy.requests.filter((r) => r.faulted)).toHaveLength(images.length);
    expect(res.stderr.split('\n').filter((l) => l !== '' && !/^warning: .* retry \d+ in /.test(l))).toEqual([]);
    expect(res.code).toBe(0);
    await expectUpstreamContent(expect, res.out);
  });

  it('refuses a tag manifest persistently served with bytes that do not match its stated digest', async ({
    expect,
  }) => {
    // kube-scheduler's index stays valid JSON with one byte flipped: only the digest tells.
    const img = images.find((i) => i.repository === 'kube-scheduler')!;
    const proxy = await faultProxy(upstream.url, [{ match: isTagManifestGet, fault: { kind: 'corrupt' } }]);
    const res = await exportVia(proxy.host, 'persistent-corrupt-tag', ['-q', '--retries', '1'], [img]);
    if (res.code === 0) {
      const recorded = metadataOf(res.out).images[0]!.digest;
      expect(
        recorded,
        `a bundle was written recording ${recorded}; upstream serves ${upstreamDigest[img.repository]}`,
      ).toBe(upstreamDigest[img.repository]);
    }
    expect(res.stderr).toContain(`${proxy.host}/kube-scheduler:v1.31.1`);
    expect(res.stderr).toMatch(/digest/i);
    expectCleanExportFailure(expect, res);
  });

  const persistent: Array<[string, Fault, RegExp]> = [
    ['connection reset mid-blob', { kind: 'reset' }, /ECONNRESET|reset|aborted/i],
    ['body shorter than Content-Length', { kind: 'truncate' }, /ECONNRESET|premature|truncat|aborted|short|closed/i],
    ['wrong bytes with the right length', { kind: 'corrupt' }, /digest|does not match/i],
    ['502', { kind: 'status', status: 502 }, /\b502\b/],
    ['429 with Retry-After', { kind: 'status', status: 429, retryAfter: 1 }, /\b429\b/],
    ['stalled connection (--timeout 2)', { kind: 'stall' }, /stall|no data/i],
    // (a persistent 503: see the --retries test below)
  ];
  it.for(persistent)(
    'persistent %s on one blob: exit 1, one error naming image, blob and cause, no bundle',
    async ([, fault, cause], { expect }) => {
      const proxy = await faultProxy(upstream.url, [
        { match: (m, p) => m === 'GET' && p.endsWith(`/blobs/${busyboxLayer}`), fault },
      ]);
      const res = await exportVia(
        proxy.host,
        `persistent-${fault.kind}-${'status' in fault ? fault.status : ''}`,
        ['-q', '--retries', '1', '--timeout', '2'],
        [busybox],
      );
      const error = res.stderr.split('\n').filter((l) => l.includes(busyboxLayer));
      expect(error.length, res.stderr).toBeGreaterThan(0);
      expect(error.join('\n')).toContain(`${proxy.host}/library/busybox:1.36`);
      expect(error.join('\n')).toMatch(cause);
      expectCleanExportFailure(expect, res);
    },
  );

  it('persistent 503 with --retries 1: at most 2 requests for the blob (the budget is honoured, not multiplied), then a clean failure', async ({
    expect,
  }) => {
    const path = `/v2/library/busybox/blobs/${busyboxLayer}`;
    const proxy = await faultProxy(upstream.url, [
      { match: (m, p) => m === 'GET' && p === path, fault: { kind: 'status', status: 503 } },
    ]);
    const res = await exportVia(proxy.host, 'retry-bound', ['-q', '--retries', '1'], [busybox]);
    expect(res.stderr).toContain(busyboxLayer);
    expect(res.stderr).toMatch(/\b503\b/);
    expectCleanExportFailure(expect, res);
    expect(proxy.requests.filter((r) => r.path === path).length).toBe(2);
  });
});

describe.concurrent('import into a faulty destination', () => {
  it('completes through a 429 (Retry-After), 500/502/503, a reset upload and a stalled upload, and the registry serves the bundle', async ({
    expect,
  }) => {
    const faults = await faultProxy(dest.url, [
      { match: (m) => m === 'HEAD', fault: { kind: 'status', status: 429, retryAfter: 1 }, times: 1 },
      {
        match: (m, p) => m === 'POST' && p.includes('/blobs/uploads/'),
        fault: { kind: 'status', status: 500 },
        times: 1,
      },
      { match: isUploadPut, fault: { kind: 'status', status: 503 }, times: 1 },
      { match: (m, p) => m === 'PUT' && p.includes('/manifests/'), fault: { kind: 'status', status: 502 }, times: 1 },
    ]);
    const wire = await wireProxy(faults.url, [
      { match: (r) => isUploadPut(r.method, r.path), action: { kind: 'reset-upload' }, times: 1 },
      { match: (r) => isUploadPut(r.method, r.path), action: { kind: 'hang' }, times: 1 },
    ]);
    const res = await importVia(wire.host, 'transient', ['--timeout', '2', '--retries', '2', '--json']);
    expect(faults.requests.filter((r) => r.faulted)).toHaveLength(4);
    expect(wire.seen.filter((r) => r.action)).toHaveLength(2);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).verification.ok).toBe(true);
    expect(await tagDigests(dest.url, 'transient')).toEqual(expectedTags());
    expect(await unpullableUnder('transient')).toEqual([]);
  });

  it('re-sends an upload damaged in transit: the bundle is intact, so it is not reported as damaged', async ({
    expect,
  }) => {
    const wire = await wireProxy(dest.url, [
      { match: (r) => isUploadPut(r.method, r.path), action: { kind: 'corrupt-upload' }, times: 1 },
    ]);
    const res = await importVia(wire.host, 'corrupt-once', ['--retries', '2', '-q']);
    expect(wire.seen.filter((r) => r.action)).toHaveLength(1);
    expect(await unpullableUnder('corrupt-once')).toEqual([]);
    expect(res.stderr).not.toMatch(/damaged in the bundle|does not match its digest/);
    expect(res.code).toBe(0);
    expect(await tagDigests(dest.url, 'corrupt-once')).toEqual(expectedTags());
  });

  // A slow but live upload past --timeout is covered in transport.test.ts with a body larger than
  // the kernel's socket buffers: below that size a client cannot see the server's reading pace.

  const onBusyboxLayer = (r: { method: string; path: string }) =>
    isUploadPut(r.method, r.path) && r.path.includes(hexOf(busyboxLayer));
  const persistent: Array<[string, { wire?: WireAction; fault?: Fault }, RegExp]> = [
    ['connection reset mid-upload', { wire: { kind: 'reset-upload' } }, /ECONNRESET|reset|socket hang up|EPIPE/i],
    ['wrong bytes with the right length', { wire: { kind: 'corrupt-upload' } }, /digest|400/i],
    ['stalled upload (--timeout 2)', { wire: { kind: 'hang' } }, /stall|no data/i],
    ['500', { fault: { kind: 'status', status: 500 } }, /\b500\b/],
    ['429 with Retry-After', { fault: { kind: 'status', status: 429, retryAfter: 1 } }, /\b429\b/],
  ];
  it.for(persistent)(
    'persistent %s on one blob: no unpullable tag, the image is not tagged, one error naming image, blob and cause',
    async ([name, how, cause], { expect }) => {
      const prefix = `p-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`.replace(/-+$/, '');
      let host: string;
      if (how.wire) host = (await wireProxy(dest.url, [{ match: onBusyboxLayer, action: how.wire }])).host;
      else
        host = (
          await faultProxy(dest.url, [{ match: (m, p) => onBusyboxLayer({ method: m, path: p }), fault: how.fault! }])
        ).host;
      const res = await importVia(host, prefix, ['--retries', '1', '--timeout', '2', '-q']);
      // Safety first: nothing visible that cannot be pulled, busybox untagged, the others complete.
      expect(await unpullableUnder(prefix)).toEqual([]);
      const present = await tagDigests(dest.url, prefix);
      expect(present['library/busybox:1.36']).toBeUndefined();
      const others = Object.fromEntries(
        Object.entries(expectedTags()).filter(([k]) => !k.startsWith('library/busybox')),
      );
      expect(present).toEqual(others);
      // Then the report: one final error line, no stack; the lines about busybox say why.
      expect(res.stderr.split('\n').filter((l) => l.startsWith('airgap-bundle:'))).toHaveLength(1);
      expect(res.stderr).not.toMatch(/^\s+at \S+ \(/m);
      const about = res.stderr.split('\n').filter((l) => l.includes('library/busybox:1.36'));
      expect(about.length, res.stderr).toBeGreaterThan(0);
      expect(about.join('\n')).toContain(busyboxLayer);
      expect(about.join('\n'), `lines naming busybox should give the cause:\n${about.join('\n')}`).toMatch(cause);
      expect(res.code).not.toBe(0);
    },
  );

  it('persistent 503 on one blob: exits 1 (failure: registry), not 3 (damaged bundle); the bundle is intact', async ({
    expect,
  }) => {
    const proxy = await faultProxy(dest.url, [
      { match: (m, p) => isUploadPut(m, p) && p.includes(hexOf(busyboxLayer)), fault: { kind: 'status', status: 503 } },
    ]);
    const res = await importVia(proxy.host, 'p-503', ['--retries', '1', '-q']);
    expect(await unpullableUnder('p-503')).toEqual([]);
    expect((await tagDigests(dest.url, 'p-503'))['library/busybox:1.36']).toBeUndefined();
    expect(
      res.stderr
        .split('\n')
        .filter((l) => l.includes('library/busybox:1.36'))
        .join('\n'),
    ).toMatch(/\b503\b/);
    expect(res.stderr).not.toMatch(/damaged in the bundle/);
    expect(res.code).toBe(1);
  });

  it('persistent 503 on manifest pushes: no tag is set, nothing unpullable, the error names the cause', async ({
    expect,
  }) => {
    const proxy = await faultProxy(dest.url, [
      { match: (m, p) => m === 'PUT' && p.includes('/manifests/'), fault: { kind: 'status', status: 503 } },
    ]);
    const res = await importVia(proxy.host, 'p-manifest-503', ['--retries', '1', '-q']);
    expect(await tagDigests(dest.url, 'p-manifest-503')).toEqual({});
    expect(await unpullableUnder('p-manifest-503')).toEqual([]);
    expect(res.stderr).toMatch(/\b503\b/);
    expect(res.stderr).not.toMatch(/^\s+at \S+ \(/m);
    expect(res.code).not.toBe(0);
  });
});

describe.concurrent('credentials', () => {
  let htp: RunningRegistry;
  let tok: RunningRegistry;
  /** Its own token registry: the test counts the tokens it issues (none), which others would disturb. */
  let tokWrong: RunningRegistry;
  const authfile = (name: string, host: string, user: string, password: string) => {
    const file = join(work.path, `${name}.auth.json`);
    writeFileSync(
      file,
      JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }),
    );
    return file;
  };
  beforeAll(async () => {
    [htp, tok, tokWrong] = await Promise.all([
      registry({ auth: 'htpasswd' }),
      registry({ auth: 'token', tokenLifetimeSeconds: 3 }),
      registry({ auth: 'token' }),
    ]);
    await Promise.all([seedRegistry(htp, images), seedRegistry(tok, [busybox])]);
  });

  it('wrong credentials: one line naming the registry and 401, and no retry storm (export and import)', async ({
    expect,
  }) => {
    const counter = await faultProxy(htp.url);
    const wrong = 'Wr0ng-Pa55word-x1';
    const one = await exportVia(
      counter.host,
      'wrong-creds-one',
      ['-q', '--authfile', authfile('wrong', counter.host, htp.username!, wrong)],
      [busybox],
    );
    expect(one.code).toBe(1);
    expect(one.stderr.trim().split('\n')).toHaveLength(1);
    expect(one.stderr).toContain(counter.host);
    expect(one.stderr).toMatch(/\b401\b/);
    expect(counter.requests.length).toBeLessThanOrEqual(3);

    const before = counter.requests.length;
    const all = await exportVia(counter.host, 'wrong-creds-all', [
      '-q',
      '--authfile',
      authfile('wrong', counter.host, htp.username!, wrong),
    ]);
    expect(all.code).toBe(1);
    expect(all.stderr.split('\n').filter((l) => l.startsWith('airgap-bundle:'))).toHaveLength(1);
    expect(all.stderr).toMatch(/\b401\b/);
    expect(counter.requests.length - before).toBeLessThanOrEqual(2 * images.length + 1);

    const before2 = counter.requests.length;
    const imp = await runCli(
      [
        'import',
        bundle,
        '--registry',
        counter.host,
        '--plain-http',
        '--username',
        htp.username!,
        '--password-stdin',
        '-q',
      ],
      { input: wrong },
    );
    expect(imp.code).toBe(1);
    expect(imp.stderr.split('\n').filter((l) => l.startsWith('airgap-bundle:'))).toHaveLength(1);
    expect(imp.stderr).toContain(counter.host);
    expect(imp.stderr).toMatch(/\b401\b/);
    expect(counter.requests.length - before2).toBeLessThanOrEqual(2 * images.length + 2);
    for (const r of [one, all, imp]) expect(r.stderr + r.stdout).not.toContain(wrong);
  });

  it('wrong credentials with a token server: one line, one token request per scope at most', async ({ expect }) => {
    const counter = await faultProxy(tokWrong.url);
    const res = await exportVia(
      counter.host,
      'wrong-token',
      ['-q', '--authfile', authfile('wrong-tok', counter.host, tokWrong.username!, 'nope-nope')],
      [busybox],
    );
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain(counter.host);
    expect(res.stderr).toMatch(/401|authentication failed/);
    expect(tokWrong.tokenServer!.issued).toBe(0);
    expect(counter.requests.length).toBeLessThanOrEqual(2);
  });

  it('asks for a new token once expires_in has passed, and never presents an expired one', async ({ expect }) => {
    // The registry allows 60 s of clock skew, so it would accept a stale token: this proxy does not.
    // It answers 401 to any Bearer token past its exp and records every token presented. The first
    // blob download is held until the first token (3 s) has expired, so the rest of the export
    // happens after its expires_in.
    type Claims = { exp: number; jti: string };
    const presented: Array<{ at: number; claims: Claims }> = [];
    let expiredSeen = 0;
    const claimsOf = (auth: string | undefined): Claims | undefined => {
      const m = /^Bearer [^.]+\.([^.]+)\./.exec(auth ?? '');
      return m ? (JSON.parse(Buffer.from(m[1]!, 'base64url').toString()) as Claims) : undefined;
    };
    const proxy = await wireProxy(tok.url, [
      {
        match: (r) => {
          const claims = claimsOf(r.headers.authorization);
          if (!claims) return false;
          presented.push({ at: Date.now(), claims });
          if (claims.exp * 1000 > Date.now()) return false;
          expiredSeen++;
          return true;
        },
        action: {
          kind: 'respond',
          status: 401,
          headers: {
            'www-authenticate': `Bearer realm="${tok.tokenServer!.url}",service="test-registry",error="invalid_token"`,
          },
        },
      },
      {
        match: (r) => r.method === 'GET' && r.path.includes('/blobs/'),
        action: { kind: 'delay', ms: () => Math.max(0, (presented[0]?.claims.exp ?? 0) * 1000 - Date.now() + 300) },
        times: 1,
      },
    ]);
    const res = await exportVia(
      proxy.host,
      'token-expiry',
      ['--json', '--concurrency', '1', '--authfile', authfile('tok', proxy.host, tok.username!, tok.password!)],
      [busybox],
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(metadataOf(res.out).images[0]!.digest).toBe(upstreamDigest['library/busybox']);
    expect(expiredSeen, 'requests that presented an expired token').toBe(0);
    const first = presented[0]!.claims;
    const afterExpiry = presented.filter((p) => p.at >= first.exp * 1000);
    expect(afterExpiry.length, 'the export should outlive its first token').toBeGreaterThan(0);
    expect(afterExpiry.every((p) => p.claims.jti !== first.jti && p.claims.exp > first.exp)).toBe(true);
  });

  it('never shows a password, token or Authorization value: not on stdout, stderr, --json, errors, nor in the bundle', async ({
    expect,
  }) => {
    const reg = tok;
    const src = await wireProxy(reg.url);
    const dst = await wireProxy(htp.url);
    const user = reg.username!;
    const outputs: CliResult[] = [];
    const okJson = await exportVia(
      src.host,
      'secret-json',
      ['--json', '--authfile', authfile('s1', src.host, user, reg.password!)],
      [busybox],
    );
    const okText = await exportVia(
      src.host,
      'secret-text',
      ['--authfile', authfile('s2', src.host, user, reg.password!)],
      [busybox],
    );
    const bad = await exportVia(
      src.host,
      'secret-bad',
      ['--authfile', authfile('s3', src.host, user, 'Bad-Secret-42')],
      [busybox],
    );
    const impOk = await runCli(
      [
        'import',
        okJson.out,
        '--registry',
        dst.host,
        '--plain-http',
        '--repo-prefix',
        'secrets',
        '--username',
        htp.username!,
        '--password-stdin',
        '--json',
      ],
      { input: htp.password! },
    );
    const impBad = await runCli(
      [
        'import',
        okJson.out,
        '--registry',
        dst.host,
        '--plain-http',
        '--repo-prefix',
        'secrets2',
        '--username',
        htp.username!,
        '--password-stdin',
      ],
      { input: 'Bad-Secret-43' },
    );
    outputs.push(okJson, okText, bad, impOk, impBad);
    expect([okJson.code, okText.code, bad.code, impOk.code, impBad.code]).toEqual([0, 0, 1, 0, 1]);

    const headers = [...src.seen, ...dst.seen]
      .map((r) => r.headers.authorization)
      .filter((a): a is string => typeof a === 'string');
    expect(headers.some((h) => h.startsWith('Bearer '))).toBe(true);
    expect(headers.some((h) => h.startsWith('Basic '))).toBe(true);
    const secrets = new Set<string>([reg.password!, htp.password!, 'Bad-Secret-42', 'Bad-Secret-43']);
    for (const [u, p] of [
      [user, reg.password!],
      [htp.username!, htp.password!],
      [user, 'Bad-Secret-42'],
      [htp.username!, 'Bad-Secret-43'],
    ] as const) {
      secrets.add(Buffer.from(`${u}:${p}`).toString('base64'));
      secrets.add(Buffer.from(`${u}:${p}`).toString('base64url'));
    }
    for (const h of headers) {
      secrets.add(h);
      const value = h.slice(h.indexOf(' ') + 1);
      secrets.add(value);
      if (h.startsWith('Bearer ')) secrets.add(value.split('.')[2]!); // the JWT signature
    }
    const bundleBytes = readFileSync(okJson.out);
    const files = [okJson.out, `${okJson.out}.sha256`, okText.out, `${okText.out}.sha256`];
    for (const s of secrets) {
      for (const [i, r] of outputs.entries()) {
        expect(r.stdout.includes(s), `run ${i} stdout shows a secret`).toBe(false);
        expect(r.stderr.includes(s), `run ${i} stderr shows a secret`).toBe(false);
      }
      for (const f of files) expect(readFileSync(f).includes(s), `${f} holds a secret`).toBe(false);
      expect(bundleBytes.includes(s), 'the bundle holds a secret').toBe(false);
    }
  });

  it('does not forward Authorization when a blob download is redirected to another host', async ({ expect }) => {
    const reg = htp;
    const basic = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;
    const cdn = await startBlobCdn(reg.url, basic);
    started.push(cdn);
    const signature = 'SiGnAtUrE0123456789abcdef';
    const front = await wireProxy(reg.url, [
      {
        match: (r) => isBlobGet(r.method, r.path),
        action: {
          kind: 'redirect',
          status: 307,
          location: (p) => {
            const m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(p)!;
            return cdn.locationFor(m[1]!, m[2]!, signature);
          },
        },
      },
    ]);
    const auth = authfile('redirect', front.host, reg.username!, reg.password!);
    const res = await exportVia(front.host, 'redirect', ['-q', '--authfile', auth], [busybox]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(metadataOf(res.out).images[0]!.digest).toBe(upstreamDigest['library/busybox']);
    // The client did authenticate to the registry for those very requests...
    const redirected = front.seen.filter((r) => r.action === 'redirect');
    expect(redirected.length).toBeGreaterThanOrEqual(3);
    expect(redirected.every((r) => typeof r.headers.authorization === 'string')).toBe(true);
    // ...and the other host:port got the downloads without it.
    expect(cdn.seen.length).toBe(redirected.length);
    expect(
      cdn.seen.filter((r) => r.headers.authorization !== undefined || r.headers['proxy-authorization'] !== undefined),
    ).toEqual([]);

    // A CDN refusal is reported without the signed query string.
    cdn.failWith = 403;
    const failed = await exportVia(
      front.host,
      'redirect-denied',
      ['-q', '--retries', '0', '--authfile', auth],
      [busybox],
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/403/);
    expect(failed.stderr).not.toContain(signature);
    expect(failed.stderr).not.toContain('X-Amz-Signature');
  });
});

describe.concurrent('trust', () => {
  it('verifies TLS by default in both directions; the failure names --ca-file and nothing is written', async ({
    expect,
  }) => {
    const reg = await registry({ tls: true });
    const exp = await exportVia(reg.host, 'tls-export', ['-q', '--retries', '0'], [busybox], false);
    expect(exp.stderr).toMatch(/certificate/i);
    expect(exp.stderr).toContain('--ca-file');
    expectCleanExportFailure(expect, exp);
    const imp = await runCli(['import', bundle, '--registry', reg.host, '--retries', '0', '-q']);
    expect(imp.code).toBe(1);
    expect(imp.stderr).toMatch(/certificate/i);
    expect(imp.stderr).toContain('--ca-file');
    const ca = readFileSync(reg.caFile!, 'utf8');
    const catalog = await new Promise<string>((resolve, reject) => {
      https
        .get(`${reg.url}/v2/_catalog`, { ca }, (r) => {
          let body = '';
          r.on('data', (c) => (body += c)).on('end', () => resolve(body));
        })
        .on('error', reject);
    });
    expect(JSON.parse(catalog)).toEqual({ repositories: [] });
  });
});
