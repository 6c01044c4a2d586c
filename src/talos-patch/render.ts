import { dump } from '../mirror/talos.js';
import type { TalosPatch } from './documents.js';

/**
 * The patch as one YAML file: the v1alpha1 part first, then each document.
 * Every value reaches the text through the serialiser, which quotes and
 * escapes whatever needs it; the separators are the only text added.
 */
export function renderPatch(patch: TalosPatch): string {
  const parts: unknown[] = [...(Object.keys(patch.v1alpha1).length > 0 ? [patch.v1alpha1] : []), ...patch.documents];
  return parts.map(dump).join('---\n');
}
