// What a registry holds, read straight over the distribution API (no code of the tool under test):
// catalog, tags and their digests, and whether every tag can actually be pulled.
import http from 'node:http';
import { sha256Digest } from '../../scripts/lib/digest.js';

/** Every manifest type, as a node asks for them. */
export const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(url: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { accept: ACCEPT }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

export async function catalog(registryUrl: string): Promise<string[]> {
  const res = await request(`${registryUrl}/v2/_catalog?n=1000`);
  if (res.status !== 200) throw new Error(`catalog of ${registryUrl}: ${res.status}`);
  return ((JSON.parse(res.body.toString()) as { repositories?: string[] }).repositories ?? []).sort();
}

export async function tags(registryUrl: string, repo: string): Promise<string[]> {
  const res = await request(`${registryUrl}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  if (res.status !== 200) throw new Error(`tags of ${repo}: ${res.status}`);
  return ((JSON.parse(res.body.toString()) as { tags?: string[] | null }).tags ?? []).sort();
}

/** `repo:tag` → digest of the manifest bytes the registry serves, for repositories under `prefix/` (prefix stripped). */
export async function tagDigests(registryUrl: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const p = prefix ? `${prefix}/` : '';
  for (const repo of (await catalog(registryUrl)).filter((r) => r.startsWith(p))) {
    for (const tag of await tags(registryUrl, repo)) {
      const res = await request(`${registryUrl}/v2/${repo}/manifests/${tag}`);
      out[`${repo.slice(p.length)}:${tag}`] = res.status === 200 ? sha256Digest(res.body) : `status ${res.status}`;
    }
  }
  return out;
}

/** Repositories under `prefix/`, prefix stripped. */
export async function catalogUnder(registryUrl: string, prefix: string): Promise<string[]> {
  return (await catalog(registryUrl)).filter((r) => r.startsWith(`${prefix}/`)).map((r) => r.slice(prefix.length + 1));
}

/**
 * Every tag that cannot be pulled completely: its manifest, each child manifest of an index, and
 * each config and layer must be served (200) from the tag's repository. Returns one line per problem.
 */
export async function unpullableTags(registryUrl: string): Promise<string[]> {
  const problems: string[] = [];
  const check = async (repo: string, selector: string, where: string, depth: number): Promise<void> => {
    const res = await request(`${registryUrl}/v2/${repo}/manifests/${selector}`);
    if (res.status !== 200) return void problems.push(`${where}: manifest ${selector} answers ${res.status}`);
    const doc = JSON.parse(res.body.toString()) as {
      manifests?: Array<{ digest: string }>;
      config?: { digest: string };
      layers?: Array<{ digest: string }>;
    };
    if (Array.isArray(doc.manifests)) {
      if (depth > 3) return void problems.push(`${where}: nested too deep`);
      for (const m of doc.manifests) await check(repo, m.digest, where, depth + 1);
      return;
    }
    for (const b of [doc.config, ...(doc.layers ?? [])]) {
      if (!b) continue;
      const head = await request(`${registryUrl}/v2/${repo}/blobs/${b.digest}`, 'HEAD');
      if (head.status !== 200) problems.push(`${where}: blob ${b.digest} answers ${head.status}`);
    }
  };
  for (const repo of await catalog(registryUrl)) {
    for (const tag of await tags(registryUrl, repo)) await check(repo, tag, `${repo}:${tag}`, 0);
  }
  return problems;
}
