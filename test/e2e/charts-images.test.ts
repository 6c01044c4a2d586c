import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { pushImage } from '../helpers/push-image.js';

const FIXTURES = resolve('test/fixtures/charts/images');

let registry: RunningRegistry;
let work: { path: string; remove: () => Promise<void> };

beforeAll(async () => {
  work = await tempDir();
  registry = await startRegistry();
  // metrics-server style: the values leave the tag empty and the registry has only v + appVersion.
  await pushImage(registry, 'metrics-server/metrics-server', 'v0.8.0');
});

afterAll(async () => {
  await registry?.stop();
  await work?.remove();
});

describe('images --chart', () => {
  it('an empty tag is settled against the registry: only the v-prefixed tag exists, so it is listed', async () => {
    const values = join(work.path, 'mirror.yaml');
    await writeFile(values, `image:\n  repository: ${registry.host}/metrics-server/metrics-server\n`);
    const res = await runCli([
      'images',
      '--plain-http',
      '--json',
      '--chart',
      join(FIXTURES, 'metrics-server-like'),
      '--chart-values',
      values,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.images.map((i: { reference: string }) => i.reference)).toEqual([
      `${registry.host}/metrics-server/metrics-server:v0.8.0`,
    ]);
    expect(out.images[0].from).toEqual([
      'chart metrics-server-like 3.13.0: values: image (empty tag: the one the registry has)',
    ]);
    expect(out.offByDefault).toEqual([
      {
        reference: 'registry.k8s.io/autoscaling/addon-resizer:1.8.23',
        from: 'chart metrics-server-like 3.13.0: values: addonResizer.image',
        off: 'addonResizer.enabled is false',
      },
    ]);
    expect(out.charts).toMatchObject([{ name: 'metrics-server-like', version: '3.13.0', appVersion: '0.8.0' }]);
    expect(out.warnings).toEqual([]);
  });

  it('several charts at once: sources named, what is off commented out, what nothing explained warned', async () => {
    const res = await runCli([
      'images',
      '--chart',
      join(FIXTURES, 'bitnami-like'),
      join(FIXTURES, 'umbrella'),
      join(FIXTURES, 'annotated'),
      join(FIXTURES, 'unexplained'),
    ]);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toContain(
      'docker.io/bitnami/redis:7.4.0-debian-12-r0@sha256:1111111111111111111111111111111111111111111111111111111111111111  # from chart redis-like 20.1.0: values: image',
    );
    expect(lines).toContain(
      'registry.example.com/example/backend:2.0  # from chart umbrella 0.3.0 > api: values: image (registry from global)',
    );
    expect(lines).toContain('quay.io/example/operand-sidecar:v2.0.0  # from chart annotated 2.0.0: Images.lock');
    expect(lines).toContain(
      '# docker.io/library/postgres:16.4  # from chart annotated 2.0.0: annotation helm.sh/images (postgres) (off: postgresql.enabled is false)',
    );
    expect(lines).toContain(
      '# registry.example.com/example/backend:1.0  # from chart umbrella 0.3.0 > worker: values: image (registry from global) (off: worker.enabled is false)',
    );
    expect(res.stderr).toContain(
      'warning: chart unexplained 0.1.0: its templates mention image: (templates/deployment.yaml:10) but no annotation, lock file or value names one',
    );
    expect(res.stderr).toContain(
      'warning: chart annotated 2.0.0: templates/operator.yaml:13 names docker.io/library/alpine:3.20',
    );
  });

  it('--chart-all-images lists what is off among the images, marked', async () => {
    const res = await runCli(['images', '--chart-all-images', '--chart', join(FIXTURES, 'bitnami-like')]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(
      'docker.io/bitnami/redis-exporter:1.62.0-debian-12-r2  # from chart redis-like 20.1.0: values: metrics.image (off: metrics.enabled is false)',
    );
    expect(res.stdout).not.toMatch(/^#/m);
  });
});

describe('images --chart --render', () => {
  // This `helm` stands in for Helm, which this machine does not have: it records the arguments it was
  // given and the chart archive it was handed, and prints a fixed rendering. What it checks is our side
  // of the contract (the command line and the reading of its output), not Helm's rendering.
  it('runs helm template with the carried chart, the values files and --kube-version, and reads its output', async () => {
    const bin = join(work.path, 'bin');
    await mkdir(bin);
    const record = join(work.path, 'helm-args');
    await writeFile(
      join(bin, 'helm'),
      [
        '#!/bin/sh',
        `printf '%s\\n' "$@" > '${record}'`,
        `cp "$3" '${record}.tgz'`,
        "cat <<'EOF'",
        '---',
        '# Source: metrics-server-like/templates/deployment.yaml',
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata: {name: release-metrics-server, namespace: kube-system}',
        'spec:',
        '  template:',
        '    spec:',
        '      containers:',
        '        - name: metrics-server',
        '          image: registry.k8s.io/metrics-server/metrics-server:v0.8.0',
        'EOF',
        '',
      ].join('\n'),
    );
    await chmod(join(bin, 'helm'), 0o755);
    const values = join(work.path, 'render.yaml');
    await writeFile(values, 'replicas: 2\n');
    const res = await runCli(
      [
        'images',
        '--chart',
        join(FIXTURES, 'metrics-server-like'),
        '--chart-values',
        values,
        '--render',
        '--kube-version',
        '1.31',
      ],
      { env: { PATH: `${bin}:/usr/bin:/bin` } },
    );
    expect(res.code, res.stderr).toBe(0);
    const args = (await readFile(record, 'utf8')).trim().split('\n');
    expect(args.slice(0, 2)).toEqual(['template', 'release']);
    expect(args[2]).toMatch(/airgap-render-[^/]+\/chart\.tgz$/);
    expect(args.slice(3)).toEqual([`--values=${values}`, '--kube-version=1.31']);
    // The archive handed to helm is a gzip of the chart (the .tgz as carried).
    expect((await readFile(`${record}.tgz`)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(res.stdout).toContain(
      'registry.k8s.io/metrics-server/metrics-server:v0.8.0  # from chart metrics-server-like 3.13.0: rendered Deployment/kube-system/release-metrics-server containers[metrics-server]',
    );
    // Values are not read for what Helm rendered; only what is off comes from them.
    expect(res.stdout).not.toContain('metrics-server:0.8.0');
    expect(res.stdout).toContain('# registry.k8s.io/autoscaling/addon-resizer:1.8.23');
  });

  it('--render without helm on PATH is one clear line, exit 2', async () => {
    const res = await runCli(['images', '--chart', join(FIXTURES, 'annotated'), '--render'], {
      env: { PATH: join(work.path, 'empty') },
    });
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe(
      "airgap-bundle: error: annotated 2.0.0: --render runs helm template, and no helm is on PATH; install Helm 3, or leave out --render to read the chart's annotations and values",
    );
  });
});
