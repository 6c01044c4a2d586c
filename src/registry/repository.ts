import type { Readable } from 'node:stream';
import type { Access, FetchedManifest, RegistryClient } from './client.js';

/**
 * One repository of one registry, bound once: what import, export and the
 * registry check talk to, so they read as what they do (`repo.headManifest(tag)`,
 * `repo.mountBlob(digest, from)`) instead of threading (registry, repository)
 * strings through every call. The client keeps the transport, credentials,
 * mirrors and retries; this only remembers where.
 */
export class Repository {
  constructor(
    private readonly client: RegistryClient,
    readonly registry: string,
    readonly name: string,
  ) {}

  /** `registry/name`, as messages name it. */
  toString(): string {
    return `${this.registry}/${this.name}`;
  }

  getManifest(selector: string, maxBytes?: number): Promise<FetchedManifest> {
    return this.client.getManifest(this.registry, this.name, selector, maxBytes);
  }

  headManifest(selector: string, access?: Access): ReturnType<RegistryClient['headManifest']> {
    return this.client.headManifest(this.registry, this.name, selector, access);
  }

  putManifest(selector: string, bytes: Buffer, mediaType: string): Promise<string | undefined> {
    return this.client.putManifest(this.registry, this.name, selector, bytes, mediaType);
  }

  openBlob(digest: string): Promise<{ body: Readable; size: number | undefined }> {
    return this.client.openBlob(this.registry, this.name, digest);
  }

  hasBlob(digest: string): Promise<boolean> {
    return this.client.hasBlob(this.registry, this.name, digest);
  }

  /** Mounts `digest` from another repository of the same registry; false when the registry will not. */
  mountBlob(digest: string, from: string): Promise<boolean> {
    return this.client.mountBlob(this.registry, this.name, digest, from);
  }

  uploadBlob(digest: string, size: number, body: () => Readable | Buffer): Promise<void> {
    return this.client.uploadBlob(this.registry, this.name, digest, size, body);
  }

  /** Why the registry refuses pushes into this repository (it must be created first), or undefined. */
  probePush(): Promise<string | undefined> {
    return this.client.probePush(this.registry, this.name);
  }

  referrers(digest: string): Promise<string[] | undefined> {
    return this.client.getReferrers(this.registry, this.name, digest);
  }

  listTags(maxPages?: number, maxTags?: number): Promise<{ tags: string[]; complete: boolean }> {
    return this.client.listTags(this.registry, this.name, maxPages, maxTags);
  }
}
