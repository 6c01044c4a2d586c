import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readChartArchive, readChartFolderEntries, loadChartFolder } from '../../src/charts/load.js';
import { packageChart } from '../../src/charts/package.js';
import { parseChartArguments } from '../../src/charts/request.js';
import { resolveCharts, type ChartContext } from '../../src/charts/resolve.js';
import { parseSpecCharts } from '../../src/charts/spec.js';
import { HelmMediaType, helmConfigJson, VENDORED_ANNOTATION } from '../../src/charts/helm-artifact.js';
import { chooseEntry, indexEntries } from '../../src/charts/repository.js';
import { pickVersion, tagOfVersion, versionOfTag } from '../../src/charts/versions.js';
import { parseBoundedYaml } from '../../src/charts/yaml.js';
import { chartIndexYaml, parseChartRoute } from '../../src/serve/charts.js';
import { parseChartPrefix } from '../../src/commands/chart-options.js';
import { Authenticator } from '../../src/registry/auth.js';
import { RegistryClient } from '../../src/registry/client.js';
import { HttpTransport } from '../../src/registry/http.js';
import { END_OF_ARCHIVE, entry, fileEntry } from '../helpers/raw-tar.js';

const FIXTURES = 'test/fixtures/charts';
const tgzOf = (...entries: Buffer[]) => gzipSync(Buffer.concat([...entries, END_OF_ARCHIVE]));
const CHART_YAML = Buffer.from('apiVersion: v2\nname: demo\nversion: 1.0.0\n');

describe('chart versions are chosen as Helm chooses them', () => {
  const versions = ['1.2.0', '1.10.0', '1.3.0-rc.1', '2.0.0', '1.9.9', 'not-semver'];
  it('an exact version as written, else the highest match', () => {
    expect(pickVersion(versions, '1.2.0')).toBe('1.2.0');
    expect(pickVersion(versions, '1.x')).toBe('1.10.0');
    expect(pickVersion(versions, '^1.2')).toBe('1.10.0');
    expect(pickVersion(versions, '>=1.2, <1.10')).toBe('1.9.9');
    expect(pickVersion(versions, undefined)).toBe('2.0.0');
  });
  it('prereleases only when the range names one', () => {
    expect(pickVersion(['1.2.0', '1.3.0-rc.1'], '>=1.2.0')).toBe('1.2.0');
    expect(pickVersion(['1.2.0', '1.3.0-rc.1'], '1.x')).toBe('1.2.0');
    expect(pickVersion(['1.2.0', '1.3.0-rc.1'], '1.2 - 1.4')).toBe('1.2.0');
    expect(pickVersion(['1.2.0', '1.3.0-rc.1'], '>=1.2.0-0')).toBe('1.3.0-rc.1');
  });
  it('nothing when nothing matches', () => {
    expect(pickVersion(versions, '3.x')).toBeUndefined();
    expect(() => chooseEntry([], '3.x', 'chart x')).toThrow(/no version matches "3.x"/);
  });
  it('tags write + as _, and read it back', () => {
    expect(tagOfVersion('1.4.0+build.7')).toBe('1.4.0_build.7');
    expect(versionOfTag('1.4.0_build.7')).toBe('1.4.0+build.7');
  });
});

describe('--chart words and the spec', () => {
  it('parses the three forms in order', () => {
    const reqs = parseChartArguments([
      'https://charts.example/stable/',
      'metrics-server@3.13.1',
      'oci://ghcr.io/org/charts/redis@20.x',
      './charts/app',
    ]);
    expect(reqs.map((r) => r.kind)).toEqual(['repo', 'oci', 'local']);
    expect(reqs[0]).toMatchObject({
      name: 'metrics-server',
      version: '3.13.1',
      source: 'https://charts.example/stable/',
    });
    expect(reqs[1]).toMatchObject({
      registry: 'ghcr.io',
      repository: 'org/charts/redis',
      name: 'redis',
      version: '20.x',
    });
  });
  it('refuses what is not a request, with exit 2', () => {
    expect(() => parseChartArguments(['https://charts.example/'])).toThrow(/must be followed by the chart/);
    expect(() => parseChartArguments(['oci://ghcr.io/Org/App@1'])).toThrow(/expected oci:\/\//);
    expect(() => parseChartArguments(['https://c.example/', 'app@not a range!'])).toThrow(/neither a version/);
    expect(() => parseChartArguments(['https://u:p@c.example/', 'app'])).toThrow(/credentials go in/);
    expect(() => parseChartPrefix('Charts/')).toThrow(/not a repository path/);
  });
  it('reads the spec list, paths against the spec folder', () => {
    const reqs = parseSpecCharts(
      [
        { repository: 'https://c.example/', name: 'app', version: '1.x' },
        { oci: 'oci://127.0.0.1:5000/charts/db', version: '2.0.0' },
        { path: 'charts/web', values: ['prod.yaml'] },
      ],
      'spec.yaml',
      '/srv/specs',
    );
    expect(reqs[0]).toMatchObject({ kind: 'repo', name: 'app', version: '1.x' });
    expect(reqs[1]).toMatchObject({ kind: 'oci', version: '2.0.0' });
    expect(reqs[2]).toEqual({ kind: 'local', source: '/srv/specs/charts/web', values: ['/srv/specs/prod.yaml'] });
    expect(() => parseSpecCharts([{ path: 'x', oci: 'oci://a/b' }], 'spec.yaml', '/')).toThrow(/exactly one of/);
  });
});

describe('packaging a chart folder', () => {
  it('is deterministic, Chart.yaml first, under NAME/, .helmignore honoured', async () => {
    const entries = await readChartFolderEntries(`${FIXTURES}/webapp`);
    const a = packageChart('webapp', entries);
    const b = packageChart('webapp', (await readChartFolderEntries(`${FIXTURES}/webapp`)).reverse());
    expect(a.equals(b)).toBe(true);
    // Fixed header fields: no time of packaging, no owner.
    const first = gunzipSync(a).subarray(0, 512);
    const octalField = (from: number, to: number) => parseInt(first.subarray(from, to).toString('latin1').trim(), 8);
    expect(octalField(136, 148)).toBe(0); // mtime
    expect(octalField(108, 116)).toBe(0); // uid
    const names = tarNames(gunzipSync(a));
    expect(names[0]).toBe('webapp/Chart.yaml');
    expect(names).toContain('webapp/templates/pod.yaml');
    expect(names).not.toContain('webapp/notes.bak');
    expect(names).not.toContain('webapp/templates/.notes');
    const chart = readChartArchive(a, 'packaged');
    expect(chart.metadata).toMatchObject({ name: 'webapp', version: '1.4.0+build.7', appVersion: '2.3' });
    expect(chart.values).toEqual({ image: { repository: 'ghcr.io/example/webapp', tag: '' } });
  });
  it('packages file:// dependencies in, and records that it did', async () => {
    const [resolved] = await resolveCharts(parseChartArguments([`${FIXTURES}/webapp`]), offlineContext());
    expect(resolved!.chart.subcharts.map((s) => s.metadata.name)).toEqual(['cache']);
    expect(tarNames(gunzipSync(resolved!.tgz))).toContain('webapp/charts/cache-0.2.0.tgz');
    const manifest = JSON.parse(resolved!.artifact.manifest.toString());
    expect(manifest.config.mediaType).toBe(HelmMediaType.config);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([HelmMediaType.chart]);
    expect(manifest.annotations[VENDORED_ANNOTATION]).toMatch(/^cache 0\.2\.0 from /);
    expect(manifest.annotations['org.opencontainers.image.title']).toBe('webapp');
    expect(manifest.annotations['org.opencontainers.image.authors']).toBe('Ops (ops@example.test)');
    expect(resolved!.artifact).toMatchObject({ repository: 'charts/webapp', tag: '1.4.0_build.7' });
    expect(resolved!.artifact.carried).toMatchObject({ kind: 'chart', name: 'webapp', version: '1.4.0+build.7' });
  });
  it("writes Helm's config: Go's field order, empty fields left out, HTML characters escaped", async () => {
    const chart = await loadChartFolder(`${FIXTURES}/webapp`);
    const doc = parseBoundedYaml(chart.files.get('Chart.yaml')!, 'Chart.yaml', {
      maxBytes: 1e6,
      maxNodes: 1e4,
      maxDepth: 10,
    }) as Record<string, unknown>;
    const json = helmConfigJson(doc, chart).toString();
    expect(Object.keys(JSON.parse(json))).toEqual([
      'name',
      'home',
      'sources',
      'version',
      'description',
      'maintainers',
      'apiVersion',
      'appVersion',
      'annotations',
      'dependencies',
    ]);
    expect(json).toContain('A web app \\u003cwith\\u003e \\u0026 \\"quotes\\"');
    expect(JSON.parse(json).dependencies).toEqual([{ name: 'cache', version: '0.2.0', repository: 'file://../cache' }]);
  });
});

describe('a chart archive is attacker input', () => {
  it('reads a plain one', () => {
    const chart = readChartArchive(tgzOf(fileEntry('demo/Chart.yaml', CHART_YAML)), 'demo.tgz');
    expect(chart.metadata.name).toBe('demo');
    expect([...chart.files.keys()]).toEqual(['Chart.yaml']);
  });
  it.each([
    [
      '..',
      tgzOf(fileEntry('demo/Chart.yaml', CHART_YAML), fileEntry('demo/../../etc/passwd', Buffer.from('x'))),
      /climbs out/,
    ],
    ['an absolute path', tgzOf(fileEntry('/demo/Chart.yaml', CHART_YAML)), /absolute/],
    [
      'a symlink',
      tgzOf(
        fileEntry('demo/Chart.yaml', CHART_YAML),
        entry({ name: 'demo/values.yaml', type: '2', linkname: '/etc/shadow' }),
      ),
      /plain files only/,
    ],
    [
      'a hard link',
      tgzOf(
        fileEntry('demo/Chart.yaml', CHART_YAML),
        entry({ name: 'demo/x', type: '1', linkname: 'demo/Chart.yaml' }),
      ),
      /plain files only/,
    ],
    [
      'a huge entry',
      tgzOf(fileEntry('demo/Chart.yaml', CHART_YAML), fileEntry('demo/crds.yaml', Buffer.alloc(21 << 20))),
      /more than the \d+ a chart file may be/,
    ],
    [
      'a file outside the chart folder',
      tgzOf(fileEntry('demo/Chart.yaml', CHART_YAML), fileEntry('other/x', Buffer.from('x'))),
      /not inside the chart's folder/,
    ],
    ['not gzip', Buffer.from('hello'), /not a gzip/],
  ])('refuses %s', (_what, tgz, message) => {
    expect(() => readChartArchive(tgz, 'demo.tgz')).toThrow(message);
  });
  it('refuses a gzip bomb before it unpacks', () => {
    const bomb = gzipSync(Buffer.alloc(101 << 20));
    expect(() => readChartArchive(bomb, 'bomb.tgz')).toThrow(/unpacks to more than/);
  });
  it('refuses an alias bomb in values.yaml', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++)
      bomb.push(
        `${'abcdefghij'[i]}: &${'abcdefghij'[i]} [${Array(10)
          .fill(`*${'abcdefghij'[i - 1]}`)
          .join(', ')}]`,
      );
    const tgz = tgzOf(
      fileEntry('demo/Chart.yaml', CHART_YAML),
      fileEntry('demo/values.yaml', Buffer.from(bomb.join('\n'))),
    );
    expect(() => readChartArchive(tgz, 'demo.tgz')).toThrow(/alias bomb/);
  });
});

describe('index.yaml', () => {
  const base = new URL('https://charts.example/stable/index.yaml');
  const index = (entries: string) => Buffer.from(`apiVersion: v1\nentries:\n${entries}`);
  it('resolves relative and absolute urls and reads the digest', () => {
    const entries = indexEntries(
      index(
        `  app:\n  - version: 1.0.0\n    urls: [app-1.0.0.tgz]\n    digest: ${'a'.repeat(64)}\n  - version: 1.1.0\n    urls: ['https://cdn.example/app-1.1.0.tgz']\n`,
      ),
      base,
      'app',
      'index',
    );
    expect(entries.map((e) => e.urls[0]!.href)).toEqual([
      'https://charts.example/stable/app-1.0.0.tgz',
      'https://cdn.example/app-1.1.0.tgz',
    ]);
    expect(entries[0]!.digest).toBe(`sha256:${'a'.repeat(64)}`);
  });
  it('refuses a non-http url and a bad digest', () => {
    expect(() =>
      indexEntries(index(`  app:\n  - version: 1.0.0\n    urls: ['file:///etc/passwd']\n`), base, 'app', 'index'),
    ).toThrow(/not an http or https URL/);
    expect(() =>
      indexEntries(index(`  app:\n  - version: 1.0.0\n    urls: [a.tgz]\n    digest: nope\n`), base, 'app', 'index'),
    ).toThrow(/not a sha256/);
    expect(() => indexEntries(index(`  other: []\n`), base, 'app', 'index')).toThrow(/no chart "app"/);
  });
});

describe("serve's classic repository", () => {
  it('lists carried charts with relative urls and hex digests', () => {
    const text = chartIndexYaml([
      { name: 'web', version: '1.0.0+b', file: 'web-1.0.0+b.tgz', digest: `sha256:${'b'.repeat(64)}`, size: 10 },
    ]);
    const doc = parseBoundedYaml(text, 'index', { maxBytes: 1e6, maxNodes: 1e4, maxDepth: 10 }) as {
      entries: Record<string, Array<Record<string, unknown>>>;
    };
    expect(doc.entries.web![0]).toMatchObject({
      version: '1.0.0+b',
      urls: ['web-1.0.0+b.tgz'],
      digest: 'b'.repeat(64),
    });
    expect(parseChartRoute('/charts/index.yaml')).toEqual({ kind: 'index' });
    expect(parseChartRoute('/charts/web-1.0.0.tgz')).toEqual({ kind: 'chart', file: 'web-1.0.0.tgz' });
    expect(parseChartRoute('/charts/../etc/passwd.tgz')).toBeUndefined();
  });
});

function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length;) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) break;
    names.push(block.subarray(0, 100).toString('utf8').replace(/\0.*$/s, ''));
    const size = parseInt(block.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

const transports: HttpTransport[] = [];
afterAll(() => transports.forEach((t) => t.close()));

/** A context for charts that need no network: local folders and their file:// dependencies. */
function offlineContext(): ChartContext {
  const http = new HttpTransport();
  transports.push(http);
  const auth = new Authenticator(http, () => undefined);
  return { registry: new RegistryClient(http, auth), http, auth, prefix: 'charts', warn: () => undefined };
}
