import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { digestAlgorithm, digestHex, sha256Digest, VerifyingStream } from '../oci/digest.js';
import { leftByDeadProcess } from '../util/process.js';
import type { BlobStore } from './blob-store.js';

const DOWNLOAD_BUFFER = 256 * 1024;

/** `$AIRGAP_BUNDLE_CACHE`, else `$XDG_CACHE_HOME/airgap-bundle`, else `~/.cache/airgap-bundle`. */
export function defaultCacheDir(env = process.env): string {
  if (env.AIRGAP_BUNDLE_CACHE) return env.AIRGAP_BUNDLE_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'airgap-bundle');
}

/**
 * A content-addressed store of verified blobs, the staging area of `export`.
 * A file appears under its digest only after its bytes were hashed and matched
 * (written to tmp/, then renamed), so an interrupted run leaves nothing that a
 * rerun could mistake for a good blob. Reuse across runs re-hashes the file once,
 * which is cheaper than a download and catches a damaged disk.
 */
export class BlobCache implements BlobStore {
  private readonly verifiedThisRun = new Set<string>();

  constructor(readonly root: string) {}

  path(digest: string): string {
    return join(this.root, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    // Downloads cut short by a killed run: their process is gone, the bytes are garbage.
    for (const name of await readdir(join(this.root, 'tmp'))) {
      if (leftByDeadProcess(Number(/^(\d+)-/.exec(name)?.[1]))) await rm(join(this.root, 'tmp', name), { force: true });
    }
  }

  /** True when the blob is present and intact; a damaged copy is removed. */
  async has(digest: string, size: number): Promise<boolean> {
    if (this.verifiedThisRun.has(digest)) return true;
    const p = this.path(digest);
    try {
      const st = await stat(p);
      if (st.size !== size) throw new Error('size differs');
      await pipeline(createReadStream(p, { highWaterMark: 1 << 20 }), new VerifyingStream({ digest, size }), devNull());
    } catch {
      await rm(p, { force: true });
      return false;
    }
    this.verifiedThisRun.add(digest);
    return true;
  }

  /** Streams `source` into the cache, verifying digest and size on the way. */
  async put(digest: string, size: number, source: Readable, onBytes?: (n: number) => void): Promise<void> {
    const tmp = this.tempPath();
    try {
      // Several downloads run at once: each holds little between the socket and the disk.
      await pipeline(
        source,
        new VerifyingStream({ digest, size }, onBytes, DOWNLOAD_BUFFER),
        createWriteStream(tmp, { highWaterMark: DOWNLOAD_BUFFER }),
      );
      await rename(tmp, this.path(digest));
    } catch (err) {
      source.destroy();
      await rm(tmp, { force: true });
      throw err;
    }
    this.verifiedThisRun.add(digest);
  }

  /** Stores bytes already in memory (manifests), checked against their digest. */
  async putBytes(digest: string, bytes: Buffer): Promise<void> {
    if (sha256Digest(bytes) !== digest) throw new Error(`refusing to cache bytes under ${digest}: digest differs`);
    const tmp = this.tempPath();
    await writeFile(tmp, bytes);
    await rename(tmp, this.path(digest));
    this.verifiedThisRun.add(digest);
  }

  private tempPath(): string {
    return join(this.root, 'tmp', `${process.pid}-${randomBytes(6).toString('hex')}`);
  }
}

function devNull() {
  return async function (source: AsyncIterable<unknown>) {
    for await (const _ of source) {
      // draining: the VerifyingStream before this does the work
    }
  };
}
