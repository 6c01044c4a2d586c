import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { readMetadata } from '../bundle/reader.js';
import { parseReceipt } from '../bundle/receipt.js';
import { UserInputError } from '../util/user-input.js';

/**
 * What a delta export may leave out: blobs listed by receipts of the isolated
 * registry and blobs carried by earlier bundles.
 */
export async function loadExclusions(
  receipts: string[],
  bundles: string[],
): Promise<{ exclude: Map<string, { mountFrom?: string }>; sources: string[] }> {
  const exclude = new Map<string, { mountFrom?: string }>();
  for (const file of receipts) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      throw new UserInputError(`cannot read receipt ${file}`);
    }
    for (const [digest, repo] of Object.entries(parseReceipt(text, file).blobs))
      exclude.set(digest, { mountFrom: repo });
  }
  for (const file of bundles) {
    for (const b of (await readMetadata(file)).blobs)
      if (!b.external && !exclude.has(b.digest)) exclude.set(b.digest, {});
  }
  return { exclude, sources: [...receipts, ...bundles].map((f) => basename(f)) };
}
