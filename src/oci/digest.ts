import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestAlgorithm(digest: string): string {
  return digest.slice(0, digest.indexOf(':'));
}

export class DigestMismatchError extends Error {
  override name = 'DigestMismatchError';
  constructor(
    readonly expected: { digest: string; size: number },
    readonly actual: { digest: string; size: number },
  ) {
    super(
      actual.size !== expected.size
        ? `size mismatch: expected ${expected.size} bytes, got ${actual.size}`
        : `digest mismatch: expected ${expected.digest}, got ${actual.digest}`,
    );
  }
}

/**
 * Passes bytes through unchanged while hashing and counting them, and fails the
 * stream at the end (or as soon as it runs over the size) when they do not match.
 * Chunks are forwarded as-is: hashing costs no copy.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash;
  private seen = 0;
  /** Filled in once the stream has ended successfully. */
  result: { digest: string; size: number } | undefined;

  /** `highWaterMark`: bytes held before the reader takes them (1 MiB unless told). */
  constructor(
    private readonly expected: { digest: string; size: number },
    private readonly onBytes?: (n: number) => void,
    highWaterMark = 1 << 20,
  ) {
    super({ highWaterMark });
    this.hash = createHash(digestAlgorithm(expected.digest));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.expected.size) {
      cb(new DigestMismatchError(this.expected, { digest: 'unknown', size: this.seen }));
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = { digest: `${digestAlgorithm(this.expected.digest)}:${this.hash.digest('hex')}`, size: this.seen };
    if (actual.size !== this.expected.size || actual.digest !== this.expected.digest) {
      cb(new DigestMismatchError(this.expected, actual));
      return;
    }
    this.result = actual;
    cb();
  }
}

/** `source` piped through a VerifyingStream, its errors passed on: the one stream a consumer reads. */
export function verified(
  source: Readable,
  expected: { digest: string; size: number },
  onBytes?: (n: number) => void,
): VerifyingStream {
  const verifier = new VerifyingStream(expected, onBytes);
  source.on('error', (err) => verifier.destroy(err));
  return source.pipe(verifier);
}
