import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { makeServerCertificate } from '../../scripts/lib/tls.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { END_OF_ARCHIVE, entry, fileEntry } from '../helpers/raw-tar.js';
import { startServe } from '../helpers/serve-process.js';

// Charts from every source, carried and imported, checked with the test's own requests: a classic
// repository (TLS with a test CA, Basic auth) served here, OCI charts pushed by plain HTTP into a
// real registry, one export, one import, and a refusal for each kind of bad chart.

const HELM_CONFIG = 'application/vnd.cncf.helm.config.v1+json';
const HELM_CHART = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';
const HELM_PROV = 'application/vnd.cncf.helm.chart.provenance.v1.prov';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const USER = 'reader';
const PASSWORD = 'chart-secret';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const tgz = (files: Record<string, string | Buffer>, extra: Buffer[] = []) =>
  gzipSync(
    Buffer.concat([
      ...Object.entries(files).map(([p, d]) => fileEntry(p, Buffer.isBuffer(d) ? d : Buffer.from(d))),
      ...extra,
      END_OF_ARCHIVE,
    ]),
  );
const chartYaml = (name: string, version: string, more = '') =>
  `apiVersion: v2\nname: ${name}\nversion: ${version}\nappVersion: "9.9"\n${more}`;

let upstream: RunningRegistry;
let dest: RunningRegistry;
let repo: https.Server;
let repoUrl: string;
let work: { path: string; remove: () => Promise<void> };
let caFile: string;
let authfile: string;
const served = new Map<string, Buffer>();
const requestsSeen: Array<{ path: string; authorized: boolean }> = [];

// The classic repository's charts.
const lib01 = tgz({ 'lib/Chart.yaml': chartYaml('lib', '0.1.0') });
const lib02 = tgz({ 'lib/Chart.yaml': chartYaml('lib', '0.2.0') });
/** Names a dependency in this repository, pinned by its lock: built once the repository's URL is known. */
let app: Buffer;
const signed = tgz({ 'signed/Chart.yaml': chartYaml('signed', '2.0.0') });
const tampered = tgz({ 'tampered/Chart.yaml': chartYaml('tampered', '1.0.0') });
const climbing = tgz({ 'climb/Chart.yaml': chartYaml('climb', '1.0.0'), 'climb/../../../etc/cron.d/x': '* * * * * x' });
const linked = tgz({ 'linked/Chart.yaml': chartYaml('linked', '1.0.0') }, [
  entry({ name: 'linked/values.yaml', type: '2', linkname: '/etc/shadow' }),
]);
const aliasBomb = [`a: &a [${Array(10).fill('x').join(',')}]`];
for (const [i, k] of [...'bcdefghi'].entries())
  aliasBomb.push(`${k}: &${k} [${Array(10).fill(`*${'abcdefghi'[i]}`).join(',')}]`);
const bomb = tgz({ 'bomb/Chart.yaml': chartYaml('bomb', '1.0.0'), 'bomb/values.yaml': aliasBomb.join('\n') });

function indexYaml(): string {
  const e = (name: string, version: string, bytes: Buffer, digest = sha256(bytes)) =>
    `  - name: ${name}\n    version: ${version}\n    digest: ${digest.slice(7)}\n    urls: [${name}-${version}.tgz]\n`;
  return [
    'apiVersion: v1',
    'entries:',
    '  lib:',
    e('lib', '0.1.0', lib01) + e('lib', '0.2.0', lib02),
    '  app:',
    e('app', '1.0.0', app) + `  - name: app\n    version: 1.1.0-rc.1\n    urls: ['${repoUrl}/absent.tgz']\n`,
    '  signed:',
    e('signed', '2.0.0', signed),
    '  tampered:',
    e('tampered', '1.0.0', tampered, sha256(Buffer.from('other bytes'))),
    '  climb:',
    e('climb', '1.0.0', climbing),
    '  linked:',
    e('linked', '1.0.0', linked),
    '  bomb:',
    e('bomb', '1.0.0', bomb),
  ].join('\n');
}

async function startRepository(cert: { certFile: string; keyFile: string }): Promise<void> {
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  repo = https.createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (req, res) => {
    const authorized = req.headers.authorization === expected;
    requestsSeen.push({ path: req.url ?? '', authorized });
    if (!authorized) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="charts"' });
      return void res.end();
    }
    const body = served.get(req.url ?? '');
    res.writeHead(body ? 200 : 404);
    res.end(body);
  });
  await new Promise<void>((ok) => repo.listen(0, '127.0.0.1', ok));
  repoUrl = `https://127.0.0.1:${(repo.address() as AddressInfo).port}`;
}

async function pushBlob(reg: RunningRegistry, repository: string, bytes: Buffer): Promise<void> {
  const start = await fetch(`${reg.url}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location')!, reg.url);
  location.searchParams.set('digest', sha256(bytes));
  expect((await fetch(location, { method: 'PUT', body: bytes })).status).toBe(201);
}

/** A chart pushed as `helm push` lays it out, built here from the test's own bytes. */
async function pushOciChart(repository: string, tag: string, chart: Buffer, config: Buffer): Promise<Buffer> {
  await pushBlob(upstream, repository, config);
  await pushBlob(upstream, repository, chart);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: HELM_CONFIG, digest: sha256(config), size: config.length },
      layers: [{ mediaType: HELM_CHART, digest: sha256(chart), size: chart.length }],
      annotations: { 'org.opencontainers.image.title': 'db' },
    }),
  );
  const put = await fetch(`${upstream.url}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': OCI_MANIFEST },
  });
  expect(put.status).toBe(201);
  return manifest;
}

async function get(reg: RunningRegistry, path: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const res = await fetch(`${reg.url}/v2/${path}`, { headers: { accept: OCI_MANIFEST } });
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

const db1 = tgz({ 'db/Chart.yaml': chartYaml('db', '1.2.0+build.5') });
const db2 = tgz({ 'db/Chart.yaml': chartYaml('db', '1.3.0') });
let dbManifest: Buffer;
let bundle: string;
let exported: Awaited<ReturnType<typeof runCli>>;

beforeAll(async () => {
  work = await tempDir();
  const cert = await makeServerCertificate(work.path);
  caFile = cert.caFile;
  await startRepository(cert);
  app = tgz({
    'app/Chart.yaml': chartYaml(
      'app',
      '1.0.0',
      `dependencies:\n  - name: lib\n    version: ">=0.1.0"\n    repository: ${repoUrl}/\n`,
    ),
    'app/Chart.lock': `dependencies:\n  - name: lib\n    version: 0.1.0\n    repository: ${repoUrl}/\ndigest: sha256:0\n`,
    'app/values.yaml': 'replicas: 1\n',
  });
  served.set('/index.yaml', Buffer.from(indexYaml()));
  for (const [name, bytes] of Object.entries({
    'lib-0.1.0': lib01,
    'lib-0.2.0': lib02,
    'app-1.0.0': app,
    'signed-2.0.0': signed,
    'tampered-1.0.0': tampered,
    'climb-1.0.0': climbing,
    'linked-1.0.0': linked,
    'bomb-1.0.0': bomb,
  }))
    served.set(`/${name}.tgz`, bytes);
  served.set(
    '/signed-2.0.0.tgz.prov',
    Buffer.from(`-----BEGIN PGP SIGNED MESSAGE-----\nfiles:\n  signed-2.0.0.tgz: ${sha256(signed)}\n`),
  );
  const host = new URL(repoUrl).host;
  authfile = join(work.path, 'auth.json');
  writeFileSync(
    authfile,
    JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }),
  );

  upstream = await startRegistry();
  dest = await startRegistry();
  dbManifest = await pushOciChart(
    'up/db',
    '1.2.0_build.5',
    db1,
    Buffer.from('{"name":"db","version":"1.2.0+build.5"}'),
  );
  await pushOciChart('up/db', '1.3.0', db2, Buffer.from('{"name":"db","version":"1.3.0"}'));

  bundle = join(work.path, 'charts.tar');
  exported = await runCli([
    'export',
    '--chart',
    repoUrl,
    'app@1.x',
    '--chart',
    `${repoUrl}/`,
    'signed@2.0.0',
    '--chart',
    `oci://${upstream.host}/up/db@~1.2.0-0`,
    '--ca-file',
    caFile,
    '--authfile',
    authfile,
    '--plain-http',
    '-o',
    bundle,
    '--cache-dir',
    join(work.path, 'cache'),
  ]);
}, 120_000);

afterAll(async () => {
  await new Promise((ok) => (repo ? repo.close(ok) : ok(undefined)));
  await upstream?.stop();
  await dest?.stop();
  await work?.remove();
});

describe('charts from a classic repository and an OCI registry cross the gap', () => {
  it('export carries them; import lands them under charts/NAME with the tag Helm uses', async () => {
    expect(exported.code, exported.stderr + exported.stdout).toBe(0);
    expect(exported.stderr).toMatch(/dependencies vendored into charts\/ \(lib 0\.1\.0 from /);
    // Credentials went to the repository only after it asked, and every file was fetched with them.
    expect(requestsSeen.filter((r) => r.authorized).map((r) => r.path)).toEqual(
      expect.arrayContaining(['/index.yaml', '/app-1.0.0.tgz', '/lib-0.1.0.tgz', '/signed-2.0.0.tgz.prov']),
    );
    const imported = await runCli(['import', bundle, '--registry', dest.host, '--plain-http']);
    expect(imported.code, imported.stderr).toBe(0);
    for (const [repository, tag] of [
      ['charts/app', '1.0.0'],
      ['charts/signed', '2.0.0'],
      ['charts/db', '1.2.0_build.5'],
    ])
      expect((await get(dest, `${repository}/manifests/${tag}`)).status, `${repository}:${tag}`).toBe(200);
  });

  it('the repository chart is a Helm chart: config, layer and provenance as helm pull requires', async () => {
    const m = await get(dest, 'charts/signed/manifests/2.0.0');
    expect(m.type).toBe(OCI_MANIFEST);
    const manifest = JSON.parse(m.body.toString());
    expect(manifest.config.mediaType).toBe(HELM_CONFIG);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([HELM_CHART, HELM_PROV]);
    expect(manifest.annotations).toMatchObject({
      'org.opencontainers.image.title': 'signed',
      'org.opencontainers.image.version': '2.0.0',
    });
    const layer = await get(dest, `charts/signed/blobs/${manifest.layers[0].digest}`);
    expect(layer.body.equals(signed)).toBe(true); // the upstream .tgz, byte for byte
    const config = JSON.parse((await get(dest, `charts/signed/blobs/${manifest.config.digest}`)).body.toString());
    expect(config).toEqual({ name: 'signed', version: '2.0.0', apiVersion: 'v2', appVersion: '9.9' });
  });

  it('a chart whose lock names a missing dependency carries it vendored, the version the lock pins', async () => {
    const manifest = JSON.parse((await get(dest, 'charts/app/manifests/1.0.0')).body.toString());
    expect(manifest.layers).toHaveLength(1);
    const layer = (await get(dest, `charts/app/blobs/${manifest.layers[0].digest}`)).body;
    const tar = (await import('node:zlib')).gunzipSync(layer);
    const at = tar.indexOf('app/charts/lib-0.1.0.tgz');
    expect(at).toBeGreaterThanOrEqual(0);
    const size = parseInt(
      tar
        .subarray(at + 124, at + 136)
        .toString('latin1')
        .trim(),
      8,
    );
    expect(tar.subarray(at + 512, at + 512 + size).equals(lib01)).toBe(true);
    expect(manifest.annotations['airgap-bundle.chart.vendored-dependencies']).toMatch(/^lib 0\.1\.0 from https:/);
  });

  it('the OCI chart keeps its digest exactly, range resolved over tags with _ read as +', async () => {
    const m = await get(dest, 'charts/db/manifests/1.2.0_build.5');
    expect(m.body.equals(dbManifest)).toBe(true);
    expect((await get(dest, 'charts/db/manifests/1.3.0')).status).toBe(404);
  });
  it('serve answers a classic repository: index.yaml of the carried charts, each .tgz as served upstream', async () => {
    expect(exported.code, exported.stderr).toBe(0);
    const server = await startServe([bundle]);
    try {
      const base = `${server.url}/charts/`;
      const res = await fetch(`${base}index.yaml`);
      expect(res.status, server.stderr()).toBe(200);
      const index = yaml.load(await res.text()) as {
        apiVersion: string;
        entries: Record<string, Array<{ name: string; version: string; digest: string; urls: string[] }>>;
      };
      expect(index.apiVersion).toBe('v1');
      expect(Object.keys(index.entries).sort()).toEqual(['app', 'db', 'signed']);
      // app's .tgz gained its vendored dependency, so only its own digest can vouch for it.
      const upstreamBytes: Record<string, Buffer | undefined> = { signed, db: db1, app: undefined };
      for (const [name, version] of [
        ['app', '1.0.0'],
        ['db', '1.2.0+build.5'],
        ['signed', '2.0.0'],
      ] as const) {
        const entries = index.entries[name]!;
        expect(entries, name).toHaveLength(1);
        const e = entries[0]!;
        expect([e.name, e.version], name).toEqual([name, version]);
        const download = await fetch(new URL(e.urls[0]!, base));
        expect(download.status, `${name} ${e.urls[0]}`).toBe(200);
        const bytes = Buffer.from(await download.arrayBuffer());
        expect(sha256(bytes), name).toBe(`sha256:${e.digest}`);
        if (upstreamBytes[name]) expect(bytes.equals(upstreamBytes[name]), name).toBe(true);
      }
      const head = await fetch(`${base}signed-2.0.0.tgz`, { method: 'HEAD' });
      expect([head.status, head.headers.get('content-length')]).toEqual([200, String(signed.length)]);
      expect((await fetch(`${base}signed-9.9.9.tgz`)).status).toBe(404);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});

describe('bad charts are refused with one line naming them', () => {
  const exportOne = (...chart: string[]) =>
    runCli([
      'export',
      '--chart',
      ...chart,
      '--ca-file',
      caFile,
      '--authfile',
      authfile,
      '--plain-http',
      '-o',
      join(work.path, 'refused.tar'),
      '--cache-dir',
      join(work.path, 'cache'),
    ]);

  it.each([
    [
      'a digest that does not match the index',
      ['tampered@1.0.0'],
      1,
      /downloaded as sha256:[0-9a-f]{64}, but the index says/,
    ],
    ['an entry that climbs out with ..', ['climb@1.0.0'], 1, /climbs out of the chart/],
    ['a link', ['linked@1.0.0'], 1, /plain files only/],
    ['an alias bomb in values.yaml', ['bomb@1.0.0'], 1, /alias bomb/],
    ['a range that matches nothing', ['app@3.x'], 2, /no version matches "3\.x"/],
  ])('%s', async (_what, chart, code, message) => {
    const res = await exportOne(repoUrl, ...chart);
    expect(res.code, res.stderr).toBe(code);
    expect(res.stderr).toMatch(message);
  });
});
