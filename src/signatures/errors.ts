import { printable } from '../util/text.js';
import type { ImageSignatures } from './check-images.js';

/** A signature's carried form cannot be read as one (annotations, log entry, payload). */
export class SignatureFormatError extends Error {
  override name = 'SignatureFormatError';
}

/** A signature was read and does not hold for the rule: why, in one line. */
export class SignatureRefused extends Error {
  override name = 'SignatureRefused';
}

/** Images that fail the policy where nothing may be written then (export, talos-cache): exit 5. */
export class SignaturePolicyRefusal extends Error {
  override name = 'SignaturePolicyRefusal';
  constructor(
    readonly failed: ImageSignatures[],
    total: number,
    consequence = 'no bundle was written',
  ) {
    const first = failed[0]!;
    super(
      `${failed.length} of ${total} images fail the signature policy, so ${consequence}: ${printable(first.reference)} (${first.rule ? `${first.rule}: ` : ''}${printable(first.reason ?? first.status, 300)})${failed.length > 1 ? ' (and more)' : ''}`,
    );
  }
}
