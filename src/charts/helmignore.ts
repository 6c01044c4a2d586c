import { printable } from '../util/text.js';
import { ChartRequestError } from './errors.js';

/**
 * A chart folder's `.helmignore`, read as Helm reads it (pkg/ignore): one
 * pattern per line, `#` comments, a trailing `/` for folders only, a leading
 * `/` anchored at the chart's root, a pattern without `/` tested against the
 * base name alone, `!` negation with Helm's own reading of it, `**` refused.
 * Patterns are Go `filepath.Match` globs. Helm always adds `templates/.?*`.
 */
export interface IgnoreRules {
  ignores(path: string, isDir: boolean): boolean;
}

interface Rule {
  negate: boolean;
  dirOnly: boolean;
  match: (path: string) => boolean;
}

const DEFAULT_RULES = ['templates/.?*'];
const MAX_RULES = 10_000;

export function parseHelmignore(text: string | undefined, where: string): IgnoreRules {
  const lines = [...(text ?? '').split(/\r?\n/), ...DEFAULT_RULES];
  if (lines.length > MAX_RULES) throw new ChartRequestError(`${where}: more than ${MAX_RULES} lines`);
  const rules = lines.map((line) => parseRule(line, where)).filter((r): r is Rule => r !== undefined);
  return {
    ignores(path: string, isDir: boolean): boolean {
      if (path === '' || path === '.') return false;
      for (const rule of rules) {
        // Helm's reading of a negated rule: whatever it does not match is ignored.
        if (rule.negate) {
          if (rule.dirOnly && !isDir) return true;
          if (!rule.match(path)) return true;
          continue;
        }
        if (rule.dirOnly && !isDir) continue;
        if (rule.match(path)) return true;
      }
      return false;
    },
  };
}

function parseRule(line: string, where: string): Rule | undefined {
  let rule = line.trim();
  if (rule === '' || rule.startsWith('#')) return undefined;
  if (rule.includes('**'))
    throw new ChartRequestError(`${where}: "${printable(rule, 80)}": Helm does not support "**" in .helmignore`);
  const negate = rule.startsWith('!');
  if (negate) rule = rule.slice(1);
  const dirOnly = rule.endsWith('/');
  if (dirOnly) rule = rule.slice(0, -1);
  if (rule.startsWith('/')) {
    const glob = goGlob(rule.slice(1));
    return { negate, dirOnly, match: (p) => glob.test(p) };
  }
  if (rule.includes('/')) {
    const glob = goGlob(rule);
    return { negate, dirOnly, match: (p) => glob.test(p) };
  }
  const glob = goGlob(rule);
  return { negate, dirOnly, match: (p) => glob.test(p.slice(p.lastIndexOf('/') + 1)) };
}

/**
 * Go's `filepath.Match` as a regular expression: `*` any run and `?` any one
 * character except `/`, `[…]` a class (`^` or `!` negating), `\` escaping. A
 * malformed pattern matches nothing, as Match's error does in Helm.
 */
export function goGlob(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) out += escapeRegex(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return /(?!)/;
      let body = pattern.slice(i + 1, end);
      const negated = body.startsWith('^') || body.startsWith('!');
      if (negated) body = body.slice(1);
      out += `[${negated ? '^/' : ''}${body.replace(/[\]\\^]/g, '\\$&')}]`;
      i = end;
    } else out += escapeRegex(c);
  }
  try {
    return new RegExp(`^${out}$`);
  } catch {
    return /(?!)/;
  }
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
