import yaml from 'js-yaml';
import type { MirrorOptions, MirrorPlan } from './plan.js';

/**
 * Every string, key or value, reaches the YAML through js-yaml's serialiser,
 * which quotes and escapes whatever needs it: nothing is concatenated.
 */
const dump = (doc: unknown) => yaml.dump(doc, { lineWidth: 200, quotingType: "'", noRefs: true });

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
  return dump({ machine: { registries: { mirrors, ...(config ? { config } : {}) } } });
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
  // Each document is serialised on its own; the separator is the only text added between them.
  return docs.map(dump).join('---\n');
}
