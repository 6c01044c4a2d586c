import yaml from 'js-yaml';
import type { MirrorPlan } from './plan.js';

const dump = (doc: unknown) => yaml.dump(doc, { lineWidth: 200, quotingType: "'", noRefs: true });

/**
 * A Talos machine-config patch (`machine.registries`, the v1alpha1 style every
 * Talos version accepts), for `talosctl gen config --config-patch` or
 * `talosctl cluster create --config-patch`.
 */
export function talosPatch(plan: MirrorPlan): string {
  const { options: o } = plan;
  const mirrors: Record<string, Record<string, unknown>> = {};
  for (const e of plan.entries) {
    mirrors[e.registry] = { endpoints: [e.url], ...(e.overridePath ? { overridePath: true } : {}), ...(o.skipFallback ? { skipFallback: true } : {}) };
  }
  const config: Record<string, unknown> = {};
  if (o.auth || o.caPem || o.insecureSkipVerify) {
    config[plan.endpointHost] = {
      ...(o.auth ? { auth: { username: o.auth.username, password: o.auth.password } } : {}),
      ...(o.caPem || o.insecureSkipVerify
        ? { tls: { ...(o.caPem ? { ca: Buffer.from(o.caPem).toString('base64') } : {}), ...(o.insecureSkipVerify ? { insecureSkipVerify: true } : {}) } }
        : {}),
    };
  }
  return dump({ machine: { registries: { mirrors, ...(Object.keys(config).length ? { config } : {}) } } });
}

/** The same as multi-document config (Talos 1.12+): RegistryMirrorConfig, RegistryAuthConfig, RegistryTLSConfig. */
export function talosMultiDoc(plan: MirrorPlan): string {
  const { options: o } = plan;
  const docs: unknown[] = plan.entries.map((e) => ({
    apiVersion: 'v1alpha1',
    kind: 'RegistryMirrorConfig',
    name: e.registry,
    endpoints: [{ url: e.url, ...(e.overridePath ? { overridePath: true } : {}) }],
    ...(o.skipFallback ? { skipFallback: true } : {}),
  }));
  if (o.auth) docs.push({ apiVersion: 'v1alpha1', kind: 'RegistryAuthConfig', name: plan.endpointHost, username: o.auth.username, password: o.auth.password });
  if (o.caPem || o.insecureSkipVerify) {
    docs.push({ apiVersion: 'v1alpha1', kind: 'RegistryTLSConfig', name: plan.endpointHost, ...(o.caPem ? { ca: o.caPem } : {}), ...(o.insecureSkipVerify ? { insecureSkipVerify: true } : {}) });
  }
  return docs.map(dump).join('---\n');
}
