// Images put into a test's registry with plain distribution-spec requests, written here so that
// seeding a registry never relies on the code under test.
import type { RunningRegistry } from '../../scripts/lib/registry.js';
import { sha256Digest } from '../../scripts/lib/digest.js';

const sha256 = sha256Digest;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** One blob, monolithic upload; its digest. */
export async function pushBlob(reg: RunningRegistry, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start ${start.status}`);
  const url = new URL(start.headers.get('location')!, reg.url);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`blob put ${put.status}: ${await put.text()}`);
  return digest;
}

/** A manifest or index under `ref` (a tag or its digest). */
export async function pushManifest(
  reg: RunningRegistry,
  repo: string,
  ref: string,
  doc: unknown,
  mediaType: string,
): Promise<{ digest: string; size: number; bytes: Buffer }> {
  const bytes = Buffer.from(JSON.stringify(doc));
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': mediaType },
  });
  if (res.status !== 201) throw new Error(`manifest put ${ref} ${res.status}: ${await res.text()}`);
  return { digest: sha256(bytes), size: bytes.length, bytes };
}

/** An image of one layer (`layer`'s bytes, gzipped by the caller or not) and `config`. */
export async function pushImage(
  reg: RunningRegistry,
  repository: string,
  tag: string,
  layer: Buffer = Buffer.from(`layer of ${repository}`),
  config: Buffer = Buffer.from('{"architecture":"amd64","os":"linux"}'),
) {
  await pushBlob(reg, repository, layer);
  await pushBlob(reg, repository, config);
  return pushManifest(
    reg,
    repository,
    tag,
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    },
    OCI_MANIFEST,
  );
}
