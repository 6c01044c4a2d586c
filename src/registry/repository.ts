import type { Readable } from 'node:stream';
import { hasBlob, openBlob, type OpenedBlob } from './blobs.js';
import type { RegistryClient, RegistryTraits } from './client.js';
import { endpointRepository, type Endpoint } from './endpoint.js';
import type { HttpRequest, HttpResponse } from './http.js';
import { listTags } from './listings.js';
import { fetchManifest, headManifest, putManifest, type FetchedManifest, type ManifestHead } from './manifests.js';
import { listReferrers } from './referrers.js';
import { mountBlob, probePush, uploadBlob } from './uploads.js';

/** What a request asks the token server for on the repository. */
export type Access = 'pull' | 'pull,push';

/** A request to a path under the repository's `/v2/<name>/`. */
export interface RepositoryRequest {
  method: HttpRequest['method'];
  path: string;
  headers?: Record<string, string>;
  body?: HttpRequest['body'];
}

/**
 * One repository of one registry, bound once: what import, export and the
 * registry check talk to, so they read as what they do (`repo.headManifest(tag)`,
 * `repo.mountBlob(digest, from)`) instead of threading (registry, repository)
 * strings through every call. The endpoint mapping (Docker Hub's API host,
 * mirrors, path prefixes) is settled here, once; the client keeps the
 * transport, credentials, retries and what it learned about each registry.
 */
export class Repository {
  /** Where its requests go. */
  readonly endpoint: Endpoint;
  /** Its path on the endpoint: the name behind the mirror's prefix, if any. */
  readonly path: string;

  constructor(
    private readonly client: RegistryClient,
    readonly registry: string,
    readonly name: string,
  ) {
    this.endpoint = client.endpoint(registry);
    this.path = endpointRepository(this.endpoint, name);
  }

  /** `registry/name`, as messages name it. */
  toString(): string {
    return `${this.registry}/${this.name}`;
  }

  getManifest(selector: string, maxBytes?: number): Promise<FetchedManifest> {
    return fetchManifest(this, selector, maxBytes);
  }

  headManifest(selector: string, access?: Access): Promise<ManifestHead | undefined> {
    return headManifest(this, selector, access);
  }

  putManifest(selector: string, bytes: Buffer, mediaType: string): Promise<string | undefined> {
    return putManifest(this, selector, bytes, mediaType);
  }

  openBlob(digest: string): Promise<OpenedBlob> {
    return openBlob(this, digest);
  }

  hasBlob(digest: string): Promise<boolean> {
    return hasBlob(this, digest);
  }

  /** Mounts `digest` from another repository of the same registry; false when the registry will not. */
  mountBlob(digest: string, from: string): Promise<boolean> {
    return mountBlob(this, digest, from);
  }

  uploadBlob(digest: string, size: number, body: () => Readable | Buffer): Promise<void> {
    return uploadBlob(this, digest, size, body);
  }

  /** Why the registry refuses pushes into this repository (it must be created first), or undefined. */
  probePush(): Promise<string | undefined> {
    return probePush(this);
  }

  referrers(digest: string): Promise<string[] | undefined> {
    return listReferrers(this, digest);
  }

  listTags(maxPages?: number, maxTags?: number): Promise<{ tags: string[]; complete: boolean }> {
    return listTags(this, maxPages, maxTags);
  }

  // The round trip the protocol modules build on.

  /** The path of another repository of the same registry on this endpoint (a mount's source). */
  pathOf(name: string): string {
    return endpointRepository(this.endpoint, name);
  }

  /** What the run learned about this repository's registry, shared by every handle on it. */
  get traits(): RegistryTraits {
    return this.client.traits(this.registry);
  }

  /** The --chunk-size of the run, if one was given. */
  get chunkSize(): number | undefined {
    return this.client.chunkSize;
  }

  /** Sends `req` under `/v2/<path>/` with `access` to this repository (and `extraScope`, space-separated). */
  send(access: Access, req: RepositoryRequest, what: string, extraScope?: string): Promise<HttpResponse> {
    const scope = `repository:${this.path}:${access}` + (extraScope ? ` ${extraScope}` : '');
    const url = `${this.endpoint.baseUrl}/v2/${this.path}/${req.path}`;
    return this.client.send(
      this.endpoint,
      scope,
      { method: req.method, url, headers: req.headers, body: req.body },
      what,
    );
  }

  /** Sends `req` to a URL the registry handed out (a page link, an upload session) with `access` to this repository. */
  sendTo(access: Access, req: HttpRequest, what: string): Promise<HttpResponse> {
    return this.client.send(this.endpoint, `repository:${this.path}:${access}`, req, what);
  }

  retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    return this.client.retrying(what, op);
  }
}
