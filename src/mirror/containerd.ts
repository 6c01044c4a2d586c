import { isRegistryHost } from '../reference/mapping.js';
import { printable } from '../util/text.js';
import { MirrorConfigError, type MirrorPlan } from './plan.js';

export interface HostsFile {
  /** Folder under containerd's config_path (`/etc/containerd/certs.d`): a registry host, or `_default`. */
  namespace: string;
  /** Relative file name → content: `hosts.toml`, and `ca.crt` when a CA is given. */
  files: Record<string, string>;
}

/** containerd's folder for the hosts of every registry without a folder of its own. */
export const DEFAULT_NAMESPACE = '_default';

/**
 * Characters a TOML basic string must not hold raw (TOML 1.0: `"`, `\`, U+0000–
 * U+001F, U+007F), plus the C1 controls and line/paragraph separators, which
 * TOML allows but a terminal showing the file would act on.
 */
const TOML_ESCAPED = /["\\\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
/** A UTF-16 surrogate without its pair: no Unicode character, so no TOML escape can name it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function tomlEscape(c: string): string {
  if (c === '"') return '\\"';
  if (c === '\\') return '\\\\';
  return `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `s` as a TOML basic string (quoted), usable as a value and as a key. */
export function tomlString(s: string): string {
  return `"${s.replace(LONE_SURROGATE, '\uFFFD').replace(TOML_ESCAPED, tomlEscape)}"`;
}

/** A TOML comment line: the text made printable, so it stays one line that nothing acts on. */
function tomlComment(text: string): string {
  return `# ${printable(text, 500)}`;
}

/**
 * The folder a registry's hosts.toml goes in: `_default` for the `'*'` mirror,
 * else the registry host, which must be one (it names a folder under the
 * output: `..`, `/` or anything else would leave it).
 */
export function namespaceOf(registry: string): string {
  if (registry === '*') return DEFAULT_NAMESPACE;
  if (!isRegistryHost(registry))
    throw new MirrorConfigError(
      `source registry "${printable(registry, 80)}" is not a host[:port]: it cannot name a containerd hosts folder`,
    );
  return registry;
}

const CAPABILITIES = 'capabilities = ["pull", "resolve"]';

/**
 * containerd `hosts.toml` files, one folder per registry namespace (`_default`
 * for the `'*'` mirror). The mirror is always a `[host."URL"]` table: containerd
 * 1.6 and early 1.7 refuse a file without one ("invalid `host` tree") and go
 * upstream, and 2.x reads the table the same way. The top-level `server` is the
 * fallback tried after the hosts: with skipFallback it is the mirror again (so
 * nothing is ever asked of the upstream registry), otherwise the upstream
 * (containerd's own default for `_default`). Every string reaches the TOML
 * through `tomlString`, keys included.
 */
export function containerdHosts(plan: MirrorPlan): HostsFile[] {
  const { options: o } = plan;
  return plan.entries.map((e) => {
    const namespace = namespaceOf(e.registry);
    const settings = [CAPABILITIES];
    if (o.caPem) settings.push(`ca = ${tomlString('ca.crt')}`);
    if (o.insecureSkipVerify) settings.push('skip_verify = true');
    if (e.overridePath) settings.push('override_path = true');
    const lines = [
      tomlComment(
        `${namespace}/hosts.toml: images of ${e.registry === '*' ? 'every registry' : e.registry} from ${plan.endpointHost}`,
      ),
    ];
    if (o.skipFallback) lines.push(`server = ${tomlString(e.url)}`, ...settings);
    else if (e.registry !== '*') lines.push(`server = ${tomlString(upstreamServer(e.registry))}`);
    lines.push('', `[host.${tomlString(e.url)}]`, ...settings.map((line) => `  ${line}`));
    const files: Record<string, string> = { 'hosts.toml': `${lines.join('\n')}\n` };
    if (o.caPem) files['ca.crt'] = o.caPem.endsWith('\n') ? o.caPem : `${o.caPem}\n`;
    return { namespace, files };
  });
}

/** Where a registry's own API is served: Docker Hub's is not at docker.io. */
function upstreamServer(registry: string): string {
  return registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
}
