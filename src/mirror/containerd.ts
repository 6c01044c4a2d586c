import type { MirrorPlan } from './plan.js';

export interface HostsFile {
  /** Folder under containerd's config_path (`/etc/containerd/certs.d`): a registry host, or `_default`. */
  namespace: string;
  /** Relative file name → content: `hosts.toml`, and `ca.crt` when a CA is given. */
  files: Record<string, string>;
}

/** TOML basic strings share JSON's escaping for everything a URL or path holds. */
const q = (s: string) => JSON.stringify(s);

/**
 * containerd `hosts.toml` files, one folder per registry namespace (`_default`
 * for the `'*'` mirror). With skipFallback the registry is the namespace's
 * `server`, so containerd never tries upstream; otherwise it is a `host` tried
 * first, with upstream as the fallback.
 */
export function containerdHosts(plan: MirrorPlan): HostsFile[] {
  const { options: o } = plan;
  return plan.entries.map((e) => {
    const namespace = e.registry === '*' ? '_default' : e.registry;
    const settings: string[] = [];
    if (o.caPem) settings.push('ca = "ca.crt"');
    if (o.insecureSkipVerify) settings.push('skip_verify = true');
    if (e.overridePath) settings.push('override_path = true');
    const lines = [`# ${namespace}/hosts.toml: images of ${e.registry === '*' ? 'every registry' : e.registry} from ${plan.endpointHost}`];
    if (o.skipFallback) {
      lines.push(`server = ${q(e.url)}`, 'capabilities = ["pull", "resolve"]', ...settings);
    } else {
      if (e.registry !== '*') lines.push(`server = ${q(e.registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${e.registry}`)}`);
      lines.push('', `[host.${q(e.url)}]`, '  capabilities = ["pull", "resolve"]', ...settings.map((s) => `  ${s}`));
    }
    const files: Record<string, string> = { 'hosts.toml': `${lines.join('\n')}\n` };
    if (o.caPem) files['ca.crt'] = o.caPem.endsWith('\n') ? o.caPem : `${o.caPem}\n`;
    return { namespace, files };
  });
}
