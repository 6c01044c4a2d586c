/**
 * An empty `tag` in a chart's values is filled in by its templates, most
 * often with the chart's appVersion (`repo:1.2.3`), in some charts with a `v`
 * in front (metrics-server: `repo:v0.7.2`). Which one the chart means is not
 * in the values; the registry on the connected side knows: each candidate is
 * asked for with a HEAD of its manifest and the one that exists is taken.
 * When none or both exist, or the registry cannot be asked, a warning names
 * both; the first candidate is kept when none exists (the export then says it
 * is missing), both when both do (the air gap is no place to find out which).
 */
import { parseReference } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { printable } from '../../util/text.js';
import type { ImageFinding } from './finding.js';

type Presence = 'present' | 'absent' | 'unknown';

async function presence(client: RegistryClient, image: string): Promise<Presence> {
  try {
    const ref = parseReference(image);
    const head = await client.repository(ref.registry, ref.repository).headManifest(ref.tag ?? 'latest');
    return head ? 'present' : 'absent';
  } catch {
    return 'unknown';
  }
}

/** What to list for one finding with candidates, and what to say about it. */
function settle(f: ImageFinding, found: Presence[], warnings: string[]): ImageFinding[] {
  const candidates = f.candidates!;
  const names = candidates.map((c) => printable(c)).join(' or ');
  const present = candidates.filter((_, i) => found[i] === 'present');
  if (present.length === 1)
    return [{ ...f, image: present[0]!, how: `${f.how} (empty tag: the one the registry has)` }];
  if (present.length > 1) {
    warnings.push(`${f.how} has an empty tag and the registry has both ${names}; both are listed`);
    return present.map((image) => ({ ...f, image, how: `${f.how} (empty tag: both exist)` }));
  }
  const why = found.includes('unknown') ? 'the registry could not be asked' : 'the registry has neither';
  warnings.push(
    `${f.how} has an empty tag, meaning ${names}, and ${why}; ${printable(candidates[0]!)} is listed (set the tag in a values file to choose)`,
  );
  return [{ ...f, image: candidates[0]! }];
}

/**
 * One finding with candidate tags replaced by the candidate the registry has
 * (or both, or the first, with a warning); any other finding unchanged.
 * Without a client (nothing to ask), the first candidate is kept, warned.
 */
export async function resolveTagCandidates(
  f: ImageFinding,
  client: RegistryClient | undefined,
  warnings: string[],
): Promise<ImageFinding[]> {
  if (!f.candidates || f.candidates.length < 2) return [f];
  const found = client
    ? await Promise.all(f.candidates.map((c) => presence(client, c)))
    : f.candidates.map((): Presence => 'unknown');
  return settle(f, found, warnings);
}
