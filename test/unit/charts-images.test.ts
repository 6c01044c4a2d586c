import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChartRequest } from '../../src/charts/request.js';
import { discoverResolvedCharts, requestValues, ValuesFileError } from '../../src/charts/images/requested-charts.js';
import type { LoadedChart } from '../../src/charts/chart.js';
import { loadChartFolder } from '../../src/charts/load.js';
import { discoverChartImages, type ChartImages, type DiscoveryOptions } from '../../src/charts/images/discover.js';
import { coalesce, mergeValueFiles, subchartValues } from '../../src/charts/images/values.js';
import { imagesFromValues } from '../../src/charts/images/values-images.js';

const FIXTURES = 'test/fixtures/charts/images';
const load = (name: string) => loadChartFolder(`${FIXTURES}/${name}`);

/** Discovery without a registry (empty tags are then warned about) and without rendering. */
function discover(chart: LoadedChart, opts: Partial<DiscoveryOptions> = {}): Promise<ChartImages> {
  return discoverChartImages(chart, Buffer.alloc(0), {
    userValues: {},
    valuesFiles: [],
    render: false,
    allImages: false,
    ...opts,
  });
}

const on = (r: ChartImages) =>
  r.images
    .filter((i) => !i.off)
    .map((i) => i.image)
    .sort();
const off = (r: ChartImages) =>
  r.images
    .filter((i) => i.off)
    .map((i) => `${i.image} (${i.off})`)
    .sort();

describe('values merged and scoped as Helm does', () => {
  it('values files: later wins, maps merge deeply, lists are replaced whole', () => {
    const merged = mergeValueFiles(
      { image: { repository: 'a', tag: '1' }, list: [1, 2], keep: true },
      { image: { tag: '2' }, list: [3] },
    );
    expect(merged).toEqual({ image: { repository: 'a', tag: '2' }, list: [3], keep: true });
  });

  it('a null in the user values deletes the chart default', () => {
    expect(coalesce({ image: { tag: '1', digest: 'x' }, other: 1 }, { image: { digest: null } })).toEqual({
      image: { tag: '1' },
      other: 1,
    });
  });

  it('a subchart sees its block over its own values, and the parent globals win over its own', () => {
    const parent = { global: { imageRegistry: 'p.example' }, sub: { image: { tag: '9' } } };
    const own = { global: { imageRegistry: 'own.example', other: 1 }, image: { repository: 'r', tag: '1' } };
    expect(subchartValues(parent, 'sub', own)).toEqual({
      global: { imageRegistry: 'p.example', other: 1 },
      image: { repository: 'r', tag: '9' },
    });
  });

  it('a key named __proto__ in hostile values stays a plain key', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "image": "x:1"}');
    const merged = mergeValueFiles({}, hostile);
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(merged)).toContain('__proto__');
  });
});

describe('image-shaped values', () => {
  it('bitnami style: global registry replaces the registry, a digest pins, enabled: false switches off', async () => {
    const chart = await load('bitnami-like');
    const r = await discover(chart, { userValues: { global: { imageRegistry: 'mirror.example.com' } } });
    expect(on(r)).toEqual([
      'mirror.example.com/bitnami/redis:7.4.0-debian-12-r0@sha256:1111111111111111111111111111111111111111111111111111111111111111',
    ]);
    expect(r.images.find((i) => !i.off)!.from).toBe('chart redis-like 20.1.0: values: image (registry from global)');
    expect(off(r)).toEqual([
      'mirror.example.com/bitnami/os-shell:12-debian-12-r27 (volumePermissions.enabled is false)',
      'mirror.example.com/bitnami/redis-exporter:1.62.0-debian-12-r2 (metrics.enabled is false)',
      'mirror.example.com/bitnami/redis-sentinel:7.4.0-debian-12-r0 (sentinel.enabled is false)',
    ]);
    expect(r.warnings).toEqual([]);
  });

  it('a values file that switches a component on brings its image in', async () => {
    const r = await discover(await load('bitnami-like'), { userValues: { metrics: { enabled: true } } });
    expect(on(r)).toContain('docker.io/bitnami/redis-exporter:1.62.0-debian-12-r2');
    expect(off(r).some((o) => o.includes('redis-exporter'))).toBe(false);
  });

  it('an empty tag, with no registry to ask, lists appVersion and warns with both names', async () => {
    const r = await discover(await load('metrics-server-like'));
    expect(on(r)).toEqual(['registry.k8s.io/metrics-server/metrics-server:0.8.0']);
    expect(r.warnings).toEqual([
      expect.stringContaining(
        'registry.k8s.io/metrics-server/metrics-server:0.8.0 or registry.k8s.io/metrics-server/metrics-server:v0.8.0, and the registry could not be asked',
      ),
    ]);
    expect(off(r)).toEqual(['registry.k8s.io/autoscaling/addon-resizer:1.8.23 (addonResizer.enabled is false)']);
  });

  it('string images under keys ending in "image", and template strings refused with a warning', () => {
    const r = imagesFromValues(
      { sidecarImage: 'busybox:1.36', nested: { image: '{{ .Values.x }}' }, imagePullPolicy: 'Always' },
      { skip: new Set(), appVersion: '1.0' },
    );
    expect(r.findings.map((f) => `${f.image} ${f.how}`)).toEqual(['busybox:1.36 values: sidecarImage']);
    expect(r.warnings).toEqual(['values: nested.image is a template string; not read (use --render)']);
  });

  it('a walk over a huge values tree stops at its bound and says so', () => {
    const wide: Record<string, unknown> = {};
    for (let i = 0; i < 120_000; i++) wide[`k${i}`] = i;
    const r = imagesFromValues({ wide }, { skip: new Set(), appVersion: undefined });
    expect(r.warnings).toEqual(['values: more than 100000 entries; the rest was not read']);
  });
});

describe('subcharts', () => {
  it('one chart under two aliases, each with its own block; conditions, tags and globals apply', async () => {
    const r = await discover(await load('umbrella'));
    expect(on(r)).toEqual([
      'docker.io/example/frontend:3.1',
      'docker.io/library/memcached:1.6.29',
      'registry.example.com/example/backend:2.0',
    ]);
    expect(r.images.find((i) => i.image === 'registry.example.com/example/backend:2.0')!.from).toBe(
      'chart umbrella 0.3.0 > api: values: image (registry from global)',
    );
    expect(off(r)).toEqual(['registry.example.com/example/backend:1.0 (worker.enabled is false)']);
  });

  it('tags switch a dependency off when its condition says nothing', async () => {
    const r = await discover(await load('umbrella'), { userValues: { tags: { caching: false } } });
    expect(off(r)).toContain('docker.io/library/memcached:1.6.29 (tags.caching is false)');
  });

  it('a condition that decides overrides the tags', async () => {
    const r = await discover(await load('umbrella'), {
      userValues: { tags: { caching: false }, cache: { enabled: true } },
    });
    expect(on(r)).toContain('docker.io/library/memcached:1.6.29');
  });

  it('a subchart not named among the dependencies is on, under its own name', async () => {
    const chart = await load('umbrella');
    chart.metadata.dependencies = [];
    const r = await discover(chart);
    expect(on(r)).toContain('registry.example.com/example/backend:1.0');
    expect(r.images.find((i) => i.image === 'registry.example.com/example/backend:1.0')!.from).toBe(
      'chart umbrella 0.3.0 > backend: values: image (registry from global)',
    );
  });
});

describe('annotations and lock files', () => {
  it('HIP-0015 conditions decide, Artifact Hub entries and Images.lock are read', async () => {
    const r = await discover(await load('annotated'));
    expect(on(r)).toEqual([
      'docker.io/library/busybox:1.36',
      'quay.io/example/operand-sidecar:v2.0.0',
      'quay.io/example/operand:v2.0.0',
      'quay.io/example/operator:v2.0.0',
    ]);
    expect(off(r)).toEqual(['docker.io/library/postgres:16.4 (postgresql.enabled is false)']);
    const froms = r.images.map((i) => i.from);
    expect(froms).toContain('chart annotated 2.0.0: annotation helm.sh/images (operator)');
    expect(froms).toContain('chart annotated 2.0.0: annotation artifacthub.io/images (operand)');
    expect(froms).toContain('chart annotated 2.0.0: Images.lock');
  });

  it('a literal image in a template that is not in the list is a warning', async () => {
    const r = await discover(await load('annotated'));
    expect(r.warnings).toEqual([
      'chart annotated 2.0.0: templates/operator.yaml:13 names docker.io/library/alpine:3.20 in the template itself; it is not in the list (render with --render, or add it with -f)',
    ]);
  });

  it('an annotation entry with a dependency is off when that subchart is', async () => {
    const chart = await load('umbrella');
    chart.metadata.annotations['helm.sh/images'] =
      '- name: w\n  image: example.com/worker-extra:1\n  dependency: worker\n';
    const r = await discover(chart);
    expect(off(r)).toContain('example.com/worker-extra:1 (worker.enabled is false)');
  });

  it('hostile annotations: not a list, control characters, invalid references are warnings, escaped', async () => {
    const chart = await load('annotated');
    chart.metadata.annotations['helm.sh/images'] = '- image: "evil\\x1b[2J:1"\n- image: UPPER/Case:1\n';
    chart.metadata.annotations['artifacthub.io/images'] = 'just: a map';
    const r = await discover(chart);
    const text = r.warnings.join('\n');
    expect(text).not.toMatch(/\x1b/);
    expect(text).toContain('\\x1b[2J');
    expect(text).toContain('"UPPER/Case:1" is not an image reference');
    expect(text).toContain('annotation artifacthub.io/images is not a YAML list of images; not read');
  });
});

describe('what nothing explained', () => {
  it('templates mentioning image: with no annotation, lock file or value naming one give a warning', async () => {
    const r = await discover(await load('unexplained'));
    expect(r.images).toEqual([]);
    expect(r.warnings).toEqual([
      'chart unexplained 0.1.0: its templates mention image: (templates/deployment.yaml:10) but no annotation, lock file or value names one; render with --render, or list the images with -f',
    ]);
  });

  it('a library chart (helpers only, never rendered itself) is not warned about', async () => {
    const chart = await load('bitnami-like');
    const common = chart.subcharts[0]!;
    (common.files as Map<string, Buffer>).set('templates/_pod.tpl', Buffer.from('image: {{ .image }}\n'));
    const r = await discover(chart);
    expect(r.warnings).toEqual([]);
    common.metadata.type = 'application';
    expect((await discover(chart)).warnings).toEqual([
      expect.stringContaining('subchart common mention image: (templates/_pod.tpl:1)'),
    ]);
  });
});

describe('values files given with --chart-values or a spec chart', () => {
  it('are merged in order, a later null deleting a default, and applied to the chart they were given for', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chart-values-'));
    try {
      const first = join(dir, 'first.yaml');
      const second = join(dir, 'second.yaml');
      await writeFile(first, 'global:\n  imageRegistry: first.example\nimage:\n  tag: from-first\n');
      await writeFile(second, 'global:\n  imageRegistry: second.example\nimage:\n  digest: null\n');
      const request: ChartRequest = { kind: 'local', source: `${FIXTURES}/bitnami-like`, values: [first, second] };
      const values = await requestValues([request]);
      const [r] = await discoverResolvedCharts(
        [{ request, chart: await load('bitnami-like'), tgz: Buffer.alloc(0) }],
        values,
        undefined,
        { render: false, allImages: false },
      );
      expect(on(r!)).toEqual(['second.example/bitnami/redis:from-first']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a values file that is missing or not a mapping is the user error, named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chart-values-'));
    try {
      await writeFile(join(dir, 'list.yaml'), '- a\n- b\n');
      const ask = (file: string) => requestValues([{ kind: 'local', source: '.', values: [file] }]);
      await expect(ask(join(dir, 'list.yaml'))).rejects.toThrow(
        `values file ${join(dir, 'list.yaml')}: not a YAML mapping of values`,
      );
      await expect(ask(join(dir, 'absent.yaml'))).rejects.toThrow(ValuesFileError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('one image, several components', () => {
  it('an image that one component deploys is not also listed as off because another, switched off, names it', async () => {
    const chart = await load('bitnami-like');
    const r = await discover(chart, {
      userValues: { sentinel: { image: { repository: 'bitnami/redis', digest: null } }, image: { digest: '' } },
    });
    expect(on(r)).toEqual(['docker.io/bitnami/redis:7.4.0-debian-12-r0']);
    expect(off(r).some((o) => o.startsWith('docker.io/bitnami/redis:'))).toBe(false);
  });
});
