import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkKubeVersion,
  findHelm,
  helmTemplateArgs,
  renderedImages,
  RenderError,
} from '../../src/charts/images/render.js';

// Running helm (or anything standing in for it) is a child process: that is in test/e2e/charts-images.test.ts.
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'charts-render-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('--render: the command line handed to helm', () => {
  it('template, a release name, the archive, then every values file and the Kubernetes version as --flag=value', () => {
    expect(helmTemplateArgs('/tmp/x/chart.tgz', ['a.yaml', '-odd.yaml'], 'v1.31.2')).toEqual([
      'template',
      'release',
      '/tmp/x/chart.tgz',
      '--values=a.yaml',
      '--values=-odd.yaml',
      '--kube-version=v1.31.2',
    ]);
    expect(helmTemplateArgs('c.tgz', [])).toEqual(['template', 'release', 'c.tgz']);
  });

  it('--kube-version accepts 1.31 and v1.31.2 and refuses anything else with exit-2 error', () => {
    expect(checkKubeVersion('1.31')).toBe('1.31');
    expect(checkKubeVersion('v1.31.2')).toBe('v1.31.2');
    expect(checkKubeVersion(undefined)).toBeUndefined();
    expect(() => checkKubeVersion('1.31; rm -rf /')).toThrow(RenderError);
    expect(() => checkKubeVersion('latest')).toThrow(/is not a Kubernetes version/);
  });

  it('finds an executable helm on PATH, skipping relative entries and non-executable files', async () => {
    const plain = join(dir, 'plain');
    const exec = join(dir, 'exec');
    for (const d of [plain, exec]) await mkdir(d);
    await writeFile(join(plain, 'helm'), '#!/bin/sh\n');
    await writeFile(join(exec, 'helm'), '#!/bin/sh\n');
    await chmod(join(exec, 'helm'), 0o755);
    expect(findHelm(['relative', plain, exec].join(':'))).toBe(join(exec, 'helm'));
    expect(findHelm(plain)).toBeUndefined();
    expect(findHelm('')).toBeUndefined();
  });

  it('without helm on PATH, --render is one line saying what to do', async () => {
    const saved = process.env.PATH;
    process.env.PATH = join(dir, 'nothing-here');
    try {
      await expect(renderedImages(Buffer.alloc(0), 'app 1.0.0', [], undefined)).rejects.toThrow(
        "app 1.0.0: --render runs helm template, and no helm is on PATH; install Helm 3, or leave out --render to read the chart's annotations and values",
      );
    } finally {
      process.env.PATH = saved;
    }
  });
});
