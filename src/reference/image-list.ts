import { formatReference, parseReference, ReferenceError, type Reference } from './reference.js';

/** Where a reference came from, for messages that point at the line to fix. */
export interface Origin {
  source: string;
  line?: number;
}

export interface ListedReference {
  ref: Reference;
  /** Full normalised text; the key references are merged on. */
  name: string;
  origins: Origin[];
}

export interface ListProblem {
  origin: Origin;
  input: string;
  reason: string;
}

/**
 * Parses image list text in the format `talosctl images` prints: one reference
 * per line; blank lines and `#` comments ignored (also trailing comments).
 */
export function parseImageListText(text: string, source: string): Array<{ input: string; origin: Origin }> {
  const entries: Array<{ input: string; origin: Origin }> = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const hash = line.indexOf('#');
    const content = (hash >= 0 ? line.slice(0, hash) : line).trim();
    if (content !== '') entries.push({ input: content, origin: { source, line: i + 1 } });
  });
  return entries;
}

/**
 * Parses and merges references from every source. All problems are collected so
 * the user fixes the whole list in one go instead of one line per run.
 */
export function collectReferences(inputs: Array<{ input: string; origin: Origin }>): {
  references: ListedReference[];
  problems: ListProblem[];
} {
  const byName = new Map<string, ListedReference>();
  const problems: ListProblem[] = [];
  for (const { input, origin } of inputs) {
    let ref: Reference;
    try {
      ref = parseReference(input);
    } catch (err) {
      if (err instanceof ReferenceError) {
        problems.push({ origin, input, reason: err.reason });
        continue;
      }
      throw err;
    }
    const name = formatReference(ref);
    const existing = byName.get(name);
    if (existing) existing.origins.push(origin);
    else byName.set(name, { ref, name, origins: [origin] });
  }
  const references = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { references, problems };
}

export function formatOrigin(o: Origin): string {
  return o.line !== undefined ? `${o.source}:${o.line}` : o.source;
}
