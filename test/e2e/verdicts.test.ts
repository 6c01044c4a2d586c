// Every command that reads a bundle opens it through one gate, so one bundle gets one verdict:
// refused whole (altered, or not readable as a bundle), damaged (some images unusable, the rest
// fine), or intact. Each case of the hostile-bundle corpus goes through verify --json, import into
// a real Distribution registry, serve (start, then every image pulled and checked by this test's
// own client) and talos-cache, and the four must agree:
//   refused  verify exit 3 with a bundle-level verdict; import exit 3 with nothing in the registry;
//            serve exits 3 before listening; talos-cache exit 3 and no output
//   damaged  verify exit 3 naming images; import exit 3 with the intact images tagged; serve starts
//            and some image cannot be pulled; talos-cache exit 3 (a cache is built whole or not at all)
//   intact   verify, import and talos-cache exit 0; serve starts and every image pulls
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetadata } from '../../src/bundle/reader.js';
import type { ImageRecord } from '../../src/bundle/format.js';
import { onExit } from '../../scripts/lib/process.js';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { runCli, tempDir, type CliResult } from '../helpers/cli.js';
import { hostileCases, makeSample, type HostileCase } from '../helpers/hostile-bundles.js';
import { ACCEPT } from '../helpers/registry-state.js';
import { startServe } from '../helpers/serve-process.js';

type Verdict = 'refused' | 'damaged' | 'intact';

const work = await tempDir('airgap-verdicts-');
const unhookWork = onExit(() => rmSync(work.path, { recursive: true, force: true }));
const sample = await makeSample(join(work.path, 'sample'));

/**
 * Cases left out of the table, each for a reason that is not about verdicts: a sidecar is read by
 * verify alone (import, serve and talos-cache read the bundle, not the file beside it), and a valid
 * bundle of 20,000 repositories is there to keep verify and inspect linear — pushing 20,000
 * repositories through a registry is the bench's work, and its verdict is intact by construction.
 */
const OUTSIDE_THE_TABLE: Record<string, string> = { 'many-images-20000': 'valid, 20,000 repositories' };
const CASES = hostileCases(sample, 'verdict-escape').filter((c) => c.cls !== 'sidecar' && !OUTSIDE_THE_TABLE[c.id]);

let registry: RunningRegistry;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
  await work.remove();
  unhookWork();
});

function lastLine(r: CliResult): string {
  return r.stderr.trim().split('\n').pop() ?? '';
}

/** verify --json: the report's verdict, or refused when the file is not even a bundle to report on. */
async function verifyVerdict(bundle: string): Promise<{ verdict: Verdict; why: string }> {
  const r = await runCli(['verify', bundle, '--json']);
  let report: { verdict?: string; ok?: boolean } | undefined;
  try {
    report = JSON.parse(r.stdout) as typeof report;
  } catch {
    report = undefined;
  }
  if (r.code === 0 && report?.verdict === 'intact') return { verdict: 'intact', why: 'exit 0' };
  if (r.code !== 3) throw new Error(`verify exited ${r.code}: ${lastLine(r)}`);
  if (!report || report.verdict === 'altered' || report.verdict === 'unreadable')
    return { verdict: 'refused', why: lastLine(r) };
  if (report.verdict === 'damaged') return { verdict: 'damaged', why: lastLine(r) };
  throw new Error(`verify exited 3 with verdict ${String(report.verdict)}`);
}

async function registryGet(path: string): Promise<unknown> {
  const res = await fetch(`${registry.url}${path}`);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`registry ${path}: ${res.status}`);
  return res.json();
}

/** Every repository the registry lists, page by page (Distribution answers at most 1,000 a page). */
async function catalog(): Promise<string[]> {
  const all: string[] = [];
  for (let last = ''; ;) {
    const page = (await registryGet(`/v2/_catalog?n=1000${last ? `&last=${encodeURIComponent(last)}` : ''}`)) as {
      repositories: string[];
    };
    all.push(...page.repositories);
    if (page.repositories.length < 1000) return all;
    last = page.repositories.at(-1)!;
  }
}

/** Repositories under `prefix/` the registry holds, and how many tags they have in all. */
async function tagsUnder(prefix: string): Promise<{ repositories: number; tags: number }> {
  const repos = (await catalog()).filter((r) => r.startsWith(`${prefix}/`));
  let tags = 0;
  for (const repo of repos)
    tags += ((await registryGet(`/v2/${repo}/tags/list`)) as { tags?: string[] } | undefined)?.tags?.length ?? 0;
  return { repositories: repos.length, tags };
}

async function importVerdict(bundle: string, prefix: string): Promise<{ verdict: Verdict; why: string }> {
  const r = await runCli([
    'import',
    bundle,
    '--registry',
    registry.host,
    '--plain-http',
    '--repo-prefix',
    prefix,
    '-q',
  ]);
  const held = await tagsUnder(prefix);
  if (r.code === 0) return { verdict: 'intact', why: `exit 0, ${held.tags} tags` };
  if (r.code !== 3) throw new Error(`import exited ${r.code}: ${r.stderr.slice(-3000)}`);
  // Refused: not one blob reached the registry. Damaged: the intact images went in, the broken
  // ones left at most the blobs that were sound, untagged.
  return held.repositories === 0
    ? { verdict: 'refused', why: lastLine(r) }
    : { verdict: 'damaged', why: `${held.tags} tags: ${lastLine(r)}` };
}

/** Reads a response whole and checks it against `digest`; a server that cuts the body short fails here. */
async function fetchChecked(url: string, digest: string, accept?: string): Promise<Buffer> {
  const res = await fetch(url, accept ? { headers: { accept } } : {});
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  const got = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  if (got !== digest) throw new Error(`${url}: got ${got}`);
  return body;
}

/** One image pulled the way a runtime does: manifests down every level, then each config and layer. */
async function pull(base: string, im: ImageRecord, blobsDone: Set<string>): Promise<void> {
  const absent = new Set(im.absent);
  const visit = async (digest: string, depth: number): Promise<void> => {
    if (depth > 10) throw new Error('indexes nested deeper than this client follows');
    const doc = JSON.parse(
      (await fetchChecked(`${base}/v2/${im.repository}/manifests/${digest}`, digest, ACCEPT)).toString(),
    ) as { manifests?: Array<{ digest: string }>; config?: { digest: string }; layers?: Array<{ digest: string }> };
    for (const child of doc.manifests ?? []) if (!absent.has(child.digest)) await visit(child.digest, depth + 1);
    for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
      if (blobsDone.has(blob.digest)) continue;
      await fetchChecked(`${base}/v2/${im.repository}/blobs/${blob.digest}`, blob.digest);
      blobsDone.add(blob.digest);
    }
  };
  await visit(im.digest, 0);
}

async function serveVerdict(bundle: string): Promise<{ verdict: Verdict; why: string }> {
  let server;
  try {
    server = await startServe([bundle]);
  } catch (err) {
    const message = (err as Error).message;
    if (!/did not start \(exit 3\)/.test(message)) throw err;
    return { verdict: 'refused', why: message.split('\n').filter(Boolean).pop() ?? message };
  }
  try {
    const images = (await readMetadata(bundle)).images;
    const seen = new Set<string>();
    const blobsDone = new Set<string>();
    const failed: string[] = [];
    for (const im of images) {
      if (seen.has(im.digest)) continue;
      seen.add(im.digest);
      await pull(server.url, im, blobsDone).catch((err: unknown) =>
        failed.push(`${im.reference}: ${(err as Error).message}`),
      );
    }
    return failed.length === 0
      ? { verdict: 'intact', why: `${seen.size} images pulled` }
      : { verdict: 'damaged', why: failed[0]! };
  } finally {
    await server.stop();
  }
}

async function talosCacheVerdict(
  bundle: string,
  out: string,
): Promise<{ code: number | null; why: string; wrote: boolean }> {
  const r = await runCli(['talos-cache', bundle, '-o', out, '--platform', 'all', '-q']);
  return { code: r.code, why: lastLine(r), wrote: existsSync(out) };
}

/**
 * A cache is built whole or not at all, so talos-cache has two verdicts: built (exit 0) or
 * refused (exit 3, damaged and altered alike). An intact bundle may still hold an image a Talos
 * image cache has no place for (an index inside an index): that refusal is exit 1 and says so,
 * it comes before any config or layer is read (where damage shows), and it is no verdict on the
 * bundle.
 */
function cacheVerdict(cache: { code: number | null; why: string }): Verdict | 'cannot hold' {
  if (cache.code === 0) return 'intact';
  if (cache.code === 3) return 'refused';
  if (cache.code === 1 && /which a Talos image cache cannot hold/.test(cache.why)) return 'cannot hold';
  throw new Error(`talos-cache exited ${cache.code}: ${cache.why}`);
}

describe('one verdict per bundle, whichever command reads it', () => {
  it('the corpus holds a case of each verdict', () => {
    const ids = CASES.map((c) => c.id);
    expect(ids).toContain('control-sample');
    expect(ids).toContain('bit-rot-one-layer');
    expect(ids).toContain('layers-25000');
  });

  it.each(CASES.map((c, i) => [c.id, c, i] as [string, HostileCase, number]))(
    '%s: verify, import, serve and talos-cache agree',
    async (_id, c, i) => {
      const dir = join(work.path, 'cases', c.id);
      mkdirSync(dir, { recursive: true });
      const { bundle } = c.build(dir);
      const verify = await verifyVerdict(bundle);
      const imported = await importVerdict(bundle, `verdict-${i}`);
      const served = await serveVerdict(bundle);
      const cache = await talosCacheVerdict(bundle, join(dir, 'cache.oci'));
      const seen = `verify: ${verify.verdict} (${verify.why}); import: ${imported.verdict} (${imported.why}); serve: ${served.verdict} (${served.why}); talos-cache: exit ${cache.code} (${cache.why})`;
      expect(imported.verdict, seen).toBe(verify.verdict);
      expect(served.verdict, seen).toBe(verify.verdict);
      // The gate comes first: an altered bundle is refused before anything else is looked at.
      const cacheMay = { refused: ['refused'], damaged: ['refused', 'cannot hold'], intact: ['intact', 'cannot hold'] };
      expect(cacheMay[verify.verdict], seen).toContain(cacheVerdict(cache));
      expect(cache.wrote, seen).toBe(cache.code === 0);
    },
  );
});
