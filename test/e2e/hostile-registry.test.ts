// The connected side: everything an upstream registry sends is attacker input. A hostile
// proxy in front of real Distribution registries rewrites and injects answers for chosen paths,
// and the built CLI must keep credentials at home, escape what it prints, bound its work and
// memory, abandon trickled bodies, degrade (not abort) when optional discovery breaks, and never
// write a bundle that the isolated side would refuse.
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry, type SampleImage } from '../../scripts/lib/samples.js';
import { makeServerCertificate, type ServerCertificate } from '../../scripts/lib/tls.js';
import { peakRssKib, startCli, tempDir } from '../helpers/cli.js';
import {
  sha256,
  startHostileRegistry,
  type CraftedManifest,
  type HostileRegistry,
} from '../helpers/hostile-registry.js';
import { pushSignedImage, type SignedImage } from '../helpers/signed-image.js';
import { metadataOf } from '../helpers/metadata.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ESC = '\x1b';
/** Peak RSS allowed to a run whose input is built to blow memory up (a plain export peaks near 100 MiB). */
const MAX_RSS_KB = 160 * 1024;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** VmHWM of the CLI process itself. */
  maxRssKb: number;
  /** Killed at the end of its budget: it hung. */
  hung: boolean;
}

/** Runs the built CLI as a user would, killed if it outlives `budgetMs` (a hang, not a slow run). */
function cli(args: string[], opts: { budgetMs?: number; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = startCli(args, {
      peakRss: true,
      env: { ...process.env, DOCKER_CONFIG: '/nonexistent-docker-config' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hung = false;
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, opts.budgetMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr: stderr.replace(/\n@@maxrss=\d+\n/, ''),
        maxRssKb: peakRssKib(child, stderr),
        hung,
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

let work: { path: string; remove: () => Promise<void> };
let busybox: SampleImage;
let plain: RunningRegistry;
let token: RunningRegistry;
let basic: RunningRegistry;
let signed: SignedImage;
let cert: ServerCertificate;
/** busybox's image manifest as the registry serves it: the leaf of every crafted index. */
let leaf: CraftedManifest;
/** One layer of busybox: the target of faults that must break one blob only. */
let layer: string;
const started: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  work = await tempDir('airgap-hostile-');
  const samples = await generateSampleImages(join(work.path, 'samples'), { layerBytes: 16 * 1024 });
  busybox = samples.find((s) => s.repository === 'library/busybox')!;
  [plain, token, basic, cert] = await Promise.all([
    startRegistry(),
    startRegistry({ auth: 'token' }),
    startRegistry({ auth: 'htpasswd' }),
    makeServerCertificate(join(work.path, 'tls')),
  ]);
  started.push(plain, token, basic);
  await Promise.all([seedRegistry(plain, [busybox]), seedRegistry(token, [busybox]), seedRegistry(basic, [busybox])]);
  signed = await pushSignedImage(plain);
  const res = await fetch(`${plain.url}/v2/${busybox.repository}/manifests/${busybox.tag}`, {
    headers: { accept: busybox.mediaType },
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  leaf = { digest: sha256(bytes), size: bytes.length, mediaType: busybox.mediaType };
  layer = (JSON.parse(bytes.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
});

afterAll(async () => {
  for (const s of started.reverse()) await s.stop();
  await work?.remove();
});

async function hostile(reg: RunningRegistry, tls = false): Promise<HostileRegistry> {
  const h = await startHostileRegistry(reg.url, tls ? { tls: cert } : {});
  started.push(h);
  return h;
}

function authfile(name: string, host: string, reg: RunningRegistry): string {
  const file = join(work.path, `${name}.auth.json`);
  writeFileSync(
    file,
    JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } }),
  );
  return file;
}

/** Exports `refs` into a fresh file of its own; the bundle path comes back with the run. */
async function exportRefs(
  name: string,
  refs: string[],
  args: string[] = [],
  budgetMs?: number,
): Promise<Run & { out: string }> {
  const out = join(work.path, `${name}.tar`);
  const run = await cli(['export', ...refs, '-o', out, ...args], budgetMs !== undefined ? { budgetMs } : {});
  return { ...run, out };
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');
const errorLines = (run: Run) => run.stderr.split('\n').filter((l) => l.startsWith('airgap-bundle:'));
const warnings = (run: Run) =>
  run.stderr.split('\n').filter((l) => l.startsWith('warning:') && !l.includes('looks like a Talos image list'));

/** Did not hang, wrote no ESC anywhere, printed no stack trace and no raw JavaScript error. */
function expectComposed(run: Run): void {
  expect(run.hung, `hung; stderr so far:\n${run.stderr}`).toBe(false);
  expect(run.stdout + run.stderr).not.toContain(ESC);
  expect(run.stderr).not.toMatch(/^\s+at \S+/m);
  expect(run.stderr).not.toMatch(/Maximum call stack|SyntaxError|TypeError|RangeError|Unexpected token/);
}

/** Refused: exit 1, one error line naming the image and the cause, and no bundle. */
function expectRefused(run: Run & { out: string }, image: string, cause: RegExp): void {
  expectComposed(run);
  expect(errorLines(run), run.stderr).toHaveLength(1);
  expect(errorLines(run)[0]).toContain(image);
  expect(errorLines(run)[0]).toMatch(cause);
  expect(run.code).toBe(1);
  expect(existsSync(run.out)).toBe(false);
}

/** Exported, and the isolated side's own check accepts the bundle. */
async function expectVerified(run: Run & { out: string }): Promise<void> {
  expectComposed(run);
  expect(run.code, run.stderr).toBe(0);
  const verify = await cli(['verify', run.out, '-q']);
  expect(verify.stderr).toBe('');
  expect(verify.code).toBe(0);
}

const index = (manifests: unknown[]) =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
const entry = (m: CraftedManifest, extra: Record<string, unknown> = {}) => ({
  mediaType: m.mediaType,
  digest: m.digest,
  size: m.size,
  ...extra,
});
const AMD64 = { platform: { os: 'linux', architecture: 'amd64' } };
const manifestGets = (h: HostileRegistry, digest: string) =>
  h.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/manifests/${digest}`)).length;

describe('credentials stay with the registry (class 10)', () => {
  it('a tags/list Link to another origin is not followed: neither the Bearer token nor Basic credentials go there', async () => {
    for (const [name, reg, scheme] of [
      ['bearer', token, 'Bearer '],
      ['basic', basic, 'Basic '],
    ] as const) {
      const h = await hostile(reg);
      h.rules.push({
        match: (m, p) => m === 'GET' && p.includes('/tags/list'),
        action: { kind: 'link-next', to: () => `${h.other.url}/v2/${busybox.repository}/tags/list?n=1000&last=x` },
      });
      const image = `${h.host}/${busybox.repository}:${busybox.tag}`;
      const run = await exportRefs(
        `link-${name}`,
        [image],
        ['--plain-http', '--authfile', authfile(`link-${name}`, h.host, reg)],
      );
      await expectVerified(run);
      // The credentials were in use with the registry itself, and the listing was really asked for.
      expect(h.requests.some((r) => r.listener === 'registry' && r.authorization?.startsWith(scheme))).toBe(true);
      expect(h.requests.some((r) => r.path.includes('/tags/list') && r.action === 'link-next')).toBe(true);
      expect(h.requests.filter((r) => r.listener === 'other')).toEqual([]);
      const warned = warnings(run).filter((w) => w.includes('another origin'));
      expect(warned, run.stderr).toHaveLength(1);
      expect(warned[0]).toContain(image);
    }
  });

  it('a blob redirected to another host that answers 401: no credentials and no token request go there', async () => {
    const h = await hostile(token);
    h.rules.push({
      match: (m, p) => m === 'GET' && p.endsWith(`/blobs/${layer}`),
      action: { kind: 'redirect', location: (p) => `${h.other.url}/cdn${p}` },
    });
    const image = `${h.host}/${busybox.repository}:${busybox.tag}`;
    const run = await exportRefs(
      'redirect-other',
      [image],
      ['--plain-http', '--retries', '0', '--authfile', authfile('redirect-other', h.host, token)],
    );
    expectRefused(run, image, /another origin/);
    const there = h.requests.filter((r) => r.listener === 'other');
    expect(there.length).toBeGreaterThan(0);
    expect(there.filter((r) => r.authorization !== undefined)).toEqual([]);
    expect(there.filter((r) => r.path.startsWith('/token'))).toEqual([]);
  });

  it('an https registry: a redirect to plain http on the same host and port is refused, nothing goes out in clear', async () => {
    const h = await hostile(basic, true);
    const image = `${h.host}/${busybox.repository}:${busybox.tag}`;
    const args = ['--ca-file', cert.caFile, '--authfile', authfile('downgrade', h.host, basic)];
    // Control: over https alone the export works, with the Basic credentials sent to the registry.
    await expectVerified(await exportRefs('downgrade-control', [image], args));
    expect(h.requests.some((r) => r.scheme === 'https' && r.authorization?.startsWith('Basic '))).toBe(true);

    h.rules.push({
      match: (m, p) => m === 'GET' && p.endsWith(`/blobs/${layer}`),
      action: { kind: 'redirect', location: (p) => `http://${h.host}${p}` },
    });
    const run = await exportRefs('downgrade', [image], [...args, '--retries', '0']);
    expectRefused(run, image, /https to plain http/);
    expect(h.requests.some((r) => r.action === 'redirect')).toBe(true);
    expect(h.requests.filter((r) => r.scheme === 'http')).toEqual([]);
  });

  it('an https registry whose token realm is plain http: the credentials are not sent to the realm', async () => {
    const h = await hostile(token, true);
    h.rules.push({ match: () => true, action: { kind: 'realm', realm: () => `${h.other.url}/token` } });
    const image = `${h.host}/${busybox.repository}:${busybox.tag}`;
    const run = await exportRefs(
      'realm-http',
      [image],
      ['--ca-file', cert.caFile, '--retries', '0', '--authfile', authfile('realm-http', h.host, token)],
    );
    expectRefused(run, image, /plain http/);
    expect(h.requests.some((r) => r.action === 'realm')).toBe(true);
    expect(h.requests.filter((r) => r.listener === 'other')).toEqual([]);
  });

  it('an upload Location on another origin gets no credentials (import)', async () => {
    const bundle = await exportRefs(
      'for-import',
      [`${plain.host}/${busybox.repository}:${busybox.tag}`],
      ['--plain-http', '-q'],
    );
    await expectVerified(bundle);
    const h = await hostile(basic);
    h.rules.push({
      match: (m, p) => m === 'POST' && p.includes('/blobs/uploads/'),
      action: { kind: 'location', to: (loc) => `${h.other.url}${new URL(loc).pathname}${new URL(loc).search}` },
    });
    // Under a prefix of its own, so the registry (seeded with busybox) lacks the blobs and uploads them.
    const run = await cli(
      [
        'import',
        bundle.out,
        '--registry',
        h.host,
        '--repo-prefix',
        'upload-location',
        '--plain-http',
        '--retries',
        '0',
        '--username',
        basic.username!,
        '--password-stdin',
        '-q',
      ],
      { input: basic.password! },
    );
    expectComposed(run);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/another origin/);
    expect(h.requests.some((r) => r.listener === 'registry' && r.authorization?.startsWith('Basic '))).toBe(true);
    const there = h.requests.filter((r) => r.listener === 'other');
    expect(there.length).toBeGreaterThan(0);
    expect(there.filter((r) => r.authorization !== undefined || r.path.startsWith('/token'))).toEqual([]);
  });
});

describe('registry strings are validated before the metadata and escaped in messages (class 11)', () => {
  it.each([
    [
      'a platform with terminal controls',
      { platform: { os: `linux${ESC}[2J`, architecture: 'amd64' } },
      [],
      /platform os "linux\\x1b\[2J"/,
    ],
    [
      'an annotation with terminal controls',
      { ...AMD64, annotations: { 'org.opencontainers.image.title': `t${ESC}]0;owned\x07` } },
      [],
      /annotation/,
    ],
    [
      'a media type with a line break',
      { ...AMD64, mediaType: `${OCI_MANIFEST}\nX-Forged: 1` },
      ['--platform', 'linux/amd64'],
      /media type "application\/vnd\.oci\.image\.manifest\.v1\+json\\nX-Forged: 1"/,
    ],
  ] as const)('refuses an index with %s, in one escaped line naming the image', async (name, extra, args, shown) => {
    const h = await hostile(plain);
    const tag = name.replace(/[^a-z]+/g, '-');
    h.serveManifest(busybox.repository, OCI_INDEX, index([entry(leaf, { ...extra })]), tag);
    const image = `${h.host}/${busybox.repository}:${tag}`;
    const run = await exportRefs(`escape-${tag}`, [image], ['--plain-http', ...args]);
    expectRefused(run, image, shown);
  });

  it('tag names with control characters in tags/list are ignored, and the bundle holds none', async () => {
    const h = await hostile(plain);
    const listed = [`${ESC}[31mred`, `v1\nforged`, signed.tag, signed.signatureTag, signed.referrersTag];
    h.rules.push({
      match: (m, p) => m === 'GET' && p.includes('/tags/list'),
      action: { kind: 'respond', status: 200, body: JSON.stringify({ name: signed.repository, tags: listed }) },
    });
    const run = await exportRefs('escape-tags', [`${h.host}/${signed.repository}:${signed.tag}`], ['--plain-http']);
    await expectVerified(run);
    const meta = JSON.stringify(metadataOf(run.out));
    expect(meta).not.toMatch(/\\u00[01][0-9a-f]|\\n/);
    expect(
      metadataOf(run.out)
        .images.map((i) => i.artifact?.kind)
        .filter(Boolean)
        .sort(),
    ).toEqual(['referrers', 'signature']);
  });
});

describe('fan-out is bounded per image (class 12)', () => {
  it('an index of 1000 entries naming one index of 1000 entries: each manifest fetched once, memory bounded, the bundle verifies', async () => {
    const h = await hostile(plain);
    const child = h.serveManifest(
      busybox.repository,
      OCI_INDEX,
      index(Array.from({ length: 1000 }, () => entry(leaf, AMD64))),
    );
    h.serveManifest(busybox.repository, OCI_INDEX, index(Array.from({ length: 1000 }, () => entry(child))), 'fan-out');
    const run = await exportRefs('fan-out', [`${h.host}/${busybox.repository}:fan-out`], ['--plain-http'], 60_000);
    await expectVerified(run);
    expect(manifestGets(h, child.digest)).toBe(1);
    expect(manifestGets(h, leaf.digest)).toBe(1);
    expect(run.maxRssKb).toBeLessThan(MAX_RSS_KB);
  });

  it('an index of 20,000 entries naming one index of 20,000 entries is refused, naming the image, in bounded memory', async () => {
    const h = await hostile(plain);
    const child = h.serveManifest(
      busybox.repository,
      OCI_INDEX,
      index(Array.from({ length: 20_000 }, () => entry(leaf, AMD64))),
    );
    h.serveManifest(busybox.repository, OCI_INDEX, index(Array.from({ length: 20_000 }, () => entry(child))), 'wide');
    const image = `${h.host}/${busybox.repository}:wide`;
    const run = await exportRefs('wide', [image], ['--plain-http']);
    expectRefused(run, image, /20000 manifests, more than 1000/);
    expect(manifestGets(h, child.digest)).toBe(0);
    expect(run.maxRssKb).toBeLessThan(MAX_RSS_KB);
  });

  it('40 distinct children of 4 MB each are refused by the per-image budget before any of them is fetched', async () => {
    const h = await hostile(plain);
    const SIZE = 4_000_000;
    const children = Array.from({ length: 40 }, (_, i) => {
      const make = () => {
        const head = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: leaf.digest, size: leaf.size },
            layers: [],
            n: i,
            padding: '',
          }),
        );
        return Buffer.concat([
          head.subarray(0, head.length - 2),
          Buffer.alloc(SIZE - head.length, 'x'),
          head.subarray(head.length - 2),
        ]);
      };
      return h.serveManifest(busybox.repository, OCI_MANIFEST, { size: SIZE, digest: sha256(make()), make });
    });
    h.serveManifest(busybox.repository, OCI_INDEX, index(children.map((c) => entry(c, AMD64))), 'heavy');
    const image = `${h.host}/${busybox.repository}:heavy`;
    const run = await exportRefs('heavy', [image], ['--plain-http']);
    expectRefused(run, image, /64 MiB/);
    expect(children.map((c) => manifestGets(h, c.digest)).reduce((a, b) => a + b, 0)).toBe(0);
    expect(run.maxRssKb).toBeLessThan(MAX_RSS_KB);
  });

  it('an index cycle (a child served as its own parent) is refused, naming the image', async () => {
    const h = await hostile(plain);
    // The child is padded to the parent's length, so the parent served in its place passes the
    // size check and meets the digest check (what a cycle needs to get past: a digest naming itself).
    const parentOf = (child: CraftedManifest) => index(Array.from({ length: 1000 }, () => entry(child)));
    const length = parentOf({ digest: sha256(Buffer.alloc(0)), size: 100_000, mediaType: OCI_INDEX }).length;
    const plainChild = index([entry(leaf, AMD64)]);
    const child = h.serveManifest(
      busybox.repository,
      OCI_INDEX,
      Buffer.concat([plainChild, Buffer.alloc(length - plainChild.length, ' ')]),
    );
    const root = parentOf(child);
    expect(root.length).toBe(child.size);
    h.serveManifest(busybox.repository, OCI_INDEX, root, 'round');
    h.rules.push({
      match: (m, p) => m === 'GET' && p.endsWith(`/manifests/${child.digest}`),
      action: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': OCI_INDEX, 'docker-content-digest': child.digest },
        body: root,
      },
    });
    const image = `${h.host}/${busybox.repository}:round`;
    const run = await exportRefs('cycle', [image], ['--plain-http', '--retries', '0']);
    expectRefused(run, image, /served content with digest|cycle/);
    expect(h.requests.filter((r) => r.action === 'respond')).toHaveLength(1);
  });

  it('indexes nested 8 deep are carried and verify; 9 deep are refused, naming the image', async () => {
    const h = await hostile(plain);
    let below: CraftedManifest = leaf;
    for (let level = 1; level <= 9; level++) {
      below = h.serveManifest(
        busybox.repository,
        OCI_INDEX,
        index([entry(below, level === 1 ? AMD64 : {})]),
        `nested-${level}`,
      );
    }
    await expectVerified(
      await exportRefs('nested-8', [`${h.host}/${busybox.repository}:nested-8`], ['--plain-http', '-q']),
    );
    const image = `${h.host}/${busybox.repository}:nested-9`;
    expectRefused(await exportRefs('nested-9', [image], ['--plain-http']), image, /nested deeper than 8/);
  });

  it('a manifest of 100,000 layers (over the size cap) and one of 2,000 layers are refused, naming the image', async () => {
    const h = await hostile(plain);
    const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: leaf.digest, size: 1 };
    for (const count of [100_000, 2_000]) {
      h.serveManifest(
        busybox.repository,
        OCI_MANIFEST,
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { ...layer, mediaType: 'application/vnd.oci.image.config.v1+json' },
            layers: Array.from({ length: count }, () => layer),
          }),
        ),
        `layers-${count}`,
      );
    }
    const huge = `${h.host}/${busybox.repository}:layers-100000`;
    const run = await exportRefs('layers-100000', [huge], ['--plain-http']);
    expectRefused(run, huge, /exceeds 4194304 bytes/);
    expect(run.maxRssKb).toBeLessThan(MAX_RSS_KB);
    const many = `${h.host}/${busybox.repository}:layers-2000`;
    expectRefused(await exportRefs('layers-2000', [many], ['--plain-http']), many, /2000 layers, more than 1000/);
  });
});

describe('trickled bodies are abandoned like stalls (class 13)', () => {
  it('a blob fed one byte every 100 ms is abandoned after the --timeout window and fetched again', async () => {
    const h = await hostile(plain);
    h.rules.push({
      match: (m, p) => m === 'GET' && p.includes('/blobs/sha256:'),
      action: { kind: 'trickle', bytes: 1, everyMs: 100 },
      times: 1,
    });
    const run = await exportRefs(
      'trickle-once',
      [`${h.host}/${busybox.repository}:${busybox.tag}`],
      ['--plain-http', '--timeout', '2'],
    );
    await expectVerified(run);
    expect(h.requests.filter((r) => r.action === 'trickle')).toHaveLength(1);
    expect(
      warnings(run).some((w) => /slower than .* retry 1/.test(w)),
      run.stderr,
    ).toBe(true);
  });

  it('a tag manifest trickled every time: exit 1 after the retries, one line naming the image', async () => {
    const h = await hostile(plain);
    h.rules.push({
      match: (m, p) => m === 'GET' && p.endsWith(`/manifests/${busybox.tag}`),
      action: { kind: 'trickle', bytes: 1, everyMs: 200 },
    });
    const image = `${h.host}/${busybox.repository}:${busybox.tag}`;
    const run = await exportRefs('trickle-always', [image], ['--plain-http', '--timeout', '2', '--retries', '1']);
    expectRefused(run, image, /slower than/);
    expect(h.requests.filter((r) => r.action === 'trickle')).toHaveLength(2);
  });
});

describe('optional discovery degrades, it does not abort (class 14)', () => {
  const signedRef = (h: HostileRegistry) => `${h.host}/${signed.repository}:${signed.tag}`;
  const artifactKinds = (bundle: string) =>
    metadataOf(bundle)
      .images.map((i) => i.artifact?.kind)
      .filter(Boolean)
      .sort();

  it.each([
    [
      'a page of 150,000 tags',
      JSON.stringify({ name: 'x', tags: Array.from({ length: 150_000 }, (_, i) => `t${i}`) }),
      /more than 10000 tags/,
    ],
    ['an answer that is not JSON', '{"tags": [', /not JSON/],
    ['tags that are not an array', '{"tags": {"a": 1}}', /not an array/],
  ])(
    'tags/list with %s: one warning naming registry and image, signatures found tag by tag',
    async (_name, body, why) => {
      const h = await hostile(plain);
      h.rules.push({
        match: (m, p) => m === 'GET' && p.includes('/tags/list'),
        action: { kind: 'respond', status: 200, body },
      });
      const run = await exportRefs(`tags-${randomBytes(4).toString('hex')}`, [signedRef(h)], ['--plain-http']);
      await expectVerified(run);
      expect(warnings(run), run.stderr).toHaveLength(1);
      expect(warnings(run)[0]).toContain(signedRef(h));
      expect(warnings(run)[0]).toContain(`${h.host}/${signed.repository}`);
      expect(warnings(run)[0]).toMatch(why);
      expect(artifactKinds(run.out)).toEqual(['referrers', 'signature']);
    },
  );

  it.each([
    ['not JSON', 'not json at all'],
    ['an index without a manifests array', JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: 'x' })],
  ])(
    'a referrers API answer that is %s: one warning, the export goes on with what the tags show',
    async (_name, body) => {
      const h = await hostile(plain);
      h.rules.push({
        match: (m, p) => m === 'GET' && p.includes('/referrers/'),
        action: { kind: 'respond', status: 200, headers: { 'content-type': OCI_INDEX }, body },
      });
      const run = await exportRefs(`referrers-${randomBytes(4).toString('hex')}`, [signedRef(h)], ['--plain-http']);
      await expectVerified(run);
      expect(warnings(run), run.stderr).toHaveLength(1);
      expect(warnings(run)[0]).toMatch(/referrers listing .* unusable/);
      expect(warnings(run)[0]).toContain(signedRef(h));
      expect(artifactKinds(run.out)).toEqual(['referrers', 'signature']);
    },
  );
});

describe('what a bundle may hold is bounded at export (class 15)', () => {
  it('27,000 referrers: the first 100 artifacts are carried, a warning says how many were left out, the bundle verifies', async () => {
    const h = await hostile(plain);
    const empty = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(Buffer.from('{}')), size: 2 };
    const subject = { mediaType: OCI_MANIFEST, digest: signed.digest, size: 0 };
    subject.size = (
      await (
        await fetch(`${plain.url}/v2/${signed.repository}/manifests/${signed.digest}`, {
          headers: { accept: OCI_MANIFEST },
        })
      ).arrayBuffer()
    ).byteLength;
    // 98 real referrers (with the signature and the fallback tag, 100 artifacts), then fakes that sort after them.
    const real = Array.from({ length: 98 }, (_, i) =>
      h.serveManifest(
        signed.repository,
        OCI_MANIFEST,
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            artifactType: 'application/vnd.example+json',
            config: empty,
            layers: [empty],
            subject,
            annotations: { n: String(i) },
          }),
        ),
      ),
    );
    const fakes = Array.from({ length: 27_000 - real.length }, () => ({
      mediaType: OCI_MANIFEST,
      digest: `sha256:ffffffff${randomBytes(28).toString('hex')}`,
      size: 500,
    }));
    // Fakes without artifactType, so the answer stays under the 4 MiB a manifest (and this listing) may have.
    const listing = index([
      ...fakes.slice(0, 500),
      ...real.map((d) => ({ ...d, artifactType: 'application/vnd.example+json' })),
      ...fakes.slice(500),
    ]);
    h.rules.push({
      match: (m, p) => m === 'GET' && p.endsWith(`/referrers/${signed.digest}`),
      action: { kind: 'respond', status: 200, headers: { 'content-type': OCI_INDEX }, body: listing },
    });
    const image = `${h.host}/${signed.repository}:${signed.tag}`;
    const run = await exportRefs('referrers-27000', [image], ['--plain-http']);
    await expectVerified(run);
    const capped = warnings(run).filter((w) => w.includes('left out'));
    expect(capped, run.stderr).toHaveLength(1);
    expect(capped[0]).toContain(image);
    expect(capped[0]).toMatch(/27002 .* the first 100 are carried, 26902 left out/);
    const artifacts = metadataOf(run.out).images.filter((i) => i.artifact?.of === image);
    expect(artifacts).toHaveLength(100);
    expect(
      artifacts
        .filter((a) => a.artifact!.kind === 'referrer')
        .map((a) => a.digest)
        .sort(),
    ).toEqual(real.map((r) => r.digest).sort());
    expect(h.requests.filter((r) => r.path.includes('/manifests/sha256:ffffffff'))).toEqual([]);
  });

  it('more image references than a bundle holds: exit 2 before any request, in one line', async () => {
    const list = join(work.path, 'too-many.images');
    writeFileSync(list, Array.from({ length: 20_001 }, (_, i) => `127.0.0.1:9/many/image:t${i}\n`).join(''));
    const run = await exportRefs('too-many', ['-f', list], ['--plain-http', '-q']);
    expectComposed(run);
    expect(errorLines(run)).toHaveLength(1);
    expect(errorLines(run)[0]).toMatch(/20001 image references, more than the 20000/);
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.code).toBe(2);
  });
});
