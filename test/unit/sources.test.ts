import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectReferences, parseImageListText } from '../../src/reference/image-list.js';
import { parseReference } from '../../src/reference/reference.js';
import { imagesFromManifests, ManifestError } from '../../src/sources/kubernetes.js';
import { imagesFromTalosConfig } from '../../src/sources/talos-config.js';
import { missingInstallerWarning } from '../../src/sources/talos-hints.js';

const fixture = (p: string) => readFileSync(`test/fixtures/${p}`, 'utf8');
const listOf = (p: string) => collectReferences(parseImageListText(fixture(p), p));

describe('talosctl output of every era', () => {
  it.each([
    ['talosctl/v0.7.0-images.txt', 11],
    ['talosctl/v1.8.0-image-default.txt', 10],
    ['talosctl/v1.13.9-images-default.txt', 10],
    ['talosctl/v1.13.9-talos-bundle.txt', 9],
  ])('%s parses completely', (file, count) => {
    const { references, problems } = listOf(file);
    expect(problems).toEqual([]);
    expect(references).toHaveLength(count);
  });

  it('keeps old-era names, tags without v, and tag@digest lines', () => {
    const names = new Set(
      [
        ...listOf('talosctl/v0.7.0-images.txt').references,
        ...listOf('talosctl/v1.13.9-images-default.txt').references,
        ...listOf('talosctl/v1.13.9-talos-bundle.txt').references,
      ].map((r) => r.name),
    );
    expect(names).toContain('k8s.gcr.io/kube-proxy-amd64:v1.19.4');
    expect(names).toContain('quay.io/coreos/flannel:v0.12.0-amd64');
    expect(names).toContain('ghcr.io/siderolabs/flannel:0.28.8');
    const ucode = listOf('talosctl/v1.13.9-talos-bundle.txt').references.find(
      (r) => r.ref.repository === 'siderolabs/amd-ucode',
    )!;
    expect(ucode.ref.tag).toBe('20251111');
    expect(ucode.ref.digest).toBe(`sha256:${'a'.repeat(64)}`);
  });

  it('warns when a Talos list has no installer (1.12+), not when it has one', () => {
    expect(missingInstallerWarning(listOf('talosctl/v1.13.9-images-default.txt').references.map((r) => r.ref))).toMatch(
      /installer/,
    );
    expect(
      missingInstallerWarning(listOf('talosctl/v1.8.0-image-default.txt').references.map((r) => r.ref)),
    ).toBeUndefined();
    expect(missingInstallerWarning(listOf('talosctl/v0.7.0-images.txt').references.map((r) => r.ref))).toBeUndefined();
    expect(missingInstallerWarning([parseReference('busybox')])).toBeUndefined();
  });
});

describe('Kubernetes manifests', () => {
  const found = imagesFromManifests(fixture('manifests/workloads.yaml'), 'workloads.yaml');
  const images = found.map((f) => f.image);

  it('finds every container kind of every workload kind and of Lists', () => {
    for (const want of [
      'busybox:1.36',
      'nicolaka/netshoot:v0.13',
      'registry.k8s.io/git-sync/git-sync:v4.2.1',
      'nginx:1.27',
      'quay.io/prometheus/nginx-exporter:1.1.0',
      'postgres:16',
      'example.com:5000/tools/migrate:7',
      'restic/restic:0.17.0',
      'ghcr.io/example/listed:1.0',
    ]) {
      expect(images, want).toContain(want);
    }
    expect(images.some((i) => i.startsWith('ghcr.io/example/agent:2.0@sha256:'))).toBe(true);
    expect(images).not.toContain('should-not-be-listed:1');
  });

  it('says where each image was found', () => {
    expect(found.find((f) => f.image === 'restic/restic:0.17.0')!.where).toBe('CronJob/backup containers[b]');
    expect(found.find((f) => f.image === 'nicolaka/netshoot:v0.13')!.where).toContain('ephemeralContainers');
  });

  it('names the file when YAML is broken', () => {
    expect(() => imagesFromManifests('kind: Pod\n  bad: [', 'x.yaml')).toThrow(ManifestError);
    expect(() => imagesFromManifests('kind: Pod\n  bad: [', 'x.yaml')).toThrow(/x\.yaml/);
  });
});

describe('Talos machine configs', () => {
  it('reads every image field, extensions and inline manifests; lists extraManifests as unreadable', () => {
    const { images, unreadable } = imagesFromTalosConfig(fixture('talos-config/controlplane-v1.8.yaml'), 'cp.yaml');
    const byField = Object.fromEntries(images.map((i) => [i.where, i.image]));
    expect(byField['machine.install.image']).toBe('ghcr.io/siderolabs/installer:v1.8.0');
    expect(byField['machine.kubelet.image']).toBe('ghcr.io/siderolabs/kubelet:v1.31.1');
    expect(byField['cluster.etcd.image']).toBe('gcr.io/etcd-development/etcd:v3.5.16');
    expect(byField['cluster.coreDNS.image']).toBe('registry.k8s.io/coredns/coredns:v1.11.3');
    expect(byField['machine.install.extensions[0]']).toBe('ghcr.io/siderolabs/gvisor:20240826.0');
    expect(images.map((i) => i.image)).toContain('registry.k8s.io/metrics-server/metrics-server:v0.7.2');
    expect(images).toHaveLength(10);
    expect(unreadable).toEqual(['https://raw.githubusercontent.com/example/cni/v1/install.yaml']);
  });

  it('reads the v1alpha1 document of a multi-document config', () => {
    const { images } = imagesFromTalosConfig(fixture('talos-config/worker-v1.12-multidoc.yaml'), 'w.yaml');
    expect(images.map((i) => i.image)).toEqual([
      'factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.12.0',
      'ghcr.io/siderolabs/kubelet:v1.35.0',
      'registry.k8s.io/kube-proxy:v1.35.0',
    ]);
    expect(missingInstallerWarning(images.map((i) => parseReference(i.image)))).toBeUndefined();
  });

  it('refuses a file that is not a machine config', () => {
    expect(() => imagesFromTalosConfig('kind: Deployment\n', 'k.yaml')).toThrow(/no Talos v1alpha1 machine config/);
  });
});
