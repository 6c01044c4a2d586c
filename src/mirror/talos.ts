import yaml from 'js-yaml';
import type { MirrorOptions, MirrorPlan } from './plan.js';

/**
 * Every string, key or value, reaches the YAML through js-yaml's serialiser,
 * which quotes and escapes whatever needs it: nothing is concatenated.
 */
export const dump = (doc: unknown) => yaml.dump(doc, { lineWidth: 200, quotingType: "'", noRefs: true });

/** Auth and TLS settings for the endpoint, or undefined when there are none. */
function endpointSettings(o: MirrorOptions): Record<string, unknown> | undefined {
  if (!o.auth && !o.caPem && !o.insecureSkipVerify) return undefined;
  return {
    ...(o.auth ? { auth: { username: o.auth.username, password: o.auth.password } } : {}),
    ...(o.caPem || o.insecureSkipVerify
      ? {
          tls: {
            ...(o.caPem ? { ca: Buffer.from(o.caPem).toString('base64') } : {}),
            ...(o.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
          },
        }
      : {}),
  };
}

/**
 * A Talos machine-config patch (`machine.registries`, the v1alpha1 style every
 * Talos version accepts), for `talosctl gen config --config-patch` or
 * `talosctl cluster create --config-patch`.
 */
export function talosPatch(plan: MirrorPlan): string {
  return dump({ machine: { registries: talosRegistries(plan) } });
}

/** The `machine.registries` value of the v1alpha1 patch, for a caller that adds other machine fields. */
export function talosRegistries(plan: MirrorPlan): Record<string, unknown> {
  const { options: o } = plan;
  // Built with fromEntries: a key is always an own property, whatever its text (`__proto__` included).
  const mirrors = Object.fromEntries(
    plan.entries.map((e) => [
      e.registry,
      {
        endpoints: [e.url],
        ...(e.overridePath ? { overridePath: true } : {}),
        ...(o.skipFallback ? { skipFallback: true } : {}),
      },
    ]),
  );
  const settings = endpointSettings(o);
  const config = settings ? Object.fromEntries([[plan.endpointHost, settings]]) : undefined;
  return { mirrors, ...(config ? { config } : {}) };
}

/** The same as multi-document config (Talos 1.12+): RegistryMirrorConfig, RegistryAuthConfig, RegistryTLSConfig. */
export function talosMultiDoc(plan: MirrorPlan): string {
  // Each document is serialised on its own; the separator is the only text added between them.
  return talosRegistryDocuments(plan).map(dump).join('---\n');
}

/** The registry documents of the multi-document config, for a caller that adds documents of its own. */
export function talosRegistryDocuments(plan: MirrorPlan): unknown[] {
  const { options: o } = plan;
  const docs: unknown[] = plan.entries.map((e) => ({
    apiVersion: 'v1alpha1',
    kind: 'RegistryMirrorConfig',
    name: e.registry,
    endpoints: [{ url: e.url, ...(e.overridePath ? { overridePath: true } : {}) }],
    ...(o.skipFallback ? { skipFallback: true } : {}),
  }));
  if (o.auth)
    docs.push({
      apiVersion: 'v1alpha1',
      kind: 'RegistryAuthConfig',
      name: plan.endpointHost,
      username: o.auth.username,
      password: o.auth.password,
    });
  if (o.caPem || o.insecureSkipVerify) {
    docs.push({
      apiVersion: 'v1alpha1',
      kind: 'RegistryTLSConfig',
      name: plan.endpointHost,
      ...(o.caPem ? { ca: o.caPem } : {}),
      ...(o.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
    });
  }
  return docs;
}
