import { createHash } from 'node:crypto';

/** Lowercase hex sha256 of `bytes`. */
export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The OCI digest of `bytes`: `sha256:<hex>`. */
export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${sha256Hex(bytes)}`;
}
