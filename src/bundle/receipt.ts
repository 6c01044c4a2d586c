/**
 * A receipt: what the isolated registry holds, carried back to the connected
 * side so the next export leaves those blobs out (a delta). Small: digests and
 * names only.
 */
import { UserInputError } from '../util/user-input.js';
export const RECEIPT_FORMAT = 'airgap-bundle-receipt/v1';

export interface Receipt {
  format: typeof RECEIPT_FORMAT;
  registry: string;
  created?: string;
  /** repository → tag → manifest digest */
  repositories: Record<string, Record<string, string>>;
  /** Every manifest and index reachable from the tags. */
  manifests: string[];
  /** Every config and layer reachable from the tags, with one repository that holds it. */
  blobs: Record<string, string>;
}

export class ReceiptError extends UserInputError {
  override name = 'ReceiptError';
}

export function parseReceipt(text: string, source: string): Receipt {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ReceiptError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  const r = doc as Partial<Receipt>;
  if (r?.format !== RECEIPT_FORMAT)
    throw new ReceiptError(
      `${source}: not an airgap-bundle receipt (format ${JSON.stringify(r?.format)}); make one with "airgap-bundle inventory"`,
    );
  if (
    typeof r.blobs !== 'object' ||
    r.blobs === null ||
    !Array.isArray(r.manifests) ||
    typeof r.repositories !== 'object'
  ) {
    throw new ReceiptError(`${source}: receipt is missing "blobs", "manifests" or "repositories"`);
  }
  return r as Receipt;
}
