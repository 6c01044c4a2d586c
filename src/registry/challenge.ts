/**
 * `WWW-Authenticate` parsing for the two schemes registries use:
 * `Bearer realm="…",service="…",scope="…"` (Docker token spec) and `Basic realm="…"`.
 */
export interface Challenge {
  scheme: 'bearer' | 'basic' | string;
  params: Record<string, string>;
}

/**
 * Parses one or more challenges. Quoted values may hold commas (scopes like
 * `repository:a:pull,push`), so this is a small tokenizer, not a split on ",".
 */
export function parseChallenges(header: string | null): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && /[\s,]/.test(header[i]!)) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && /[^\s=,"]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  /** A quoted-string, with backslash escapes: `"a \\"b\\" c"` → `a "b" c`. */
  const readQuoted = () => {
    let value = '';
    i++;
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      value += header[i];
      i++;
    }
    i++;
    return value;
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (i >= n) break;
    const token = readToken();
    if (token === '') {
      i++;
      continue;
    }
    while (i < n && header[i] === ' ') i++;
    if (header[i] === '=') {
      i++;
      while (i < n && header[i] === ' ') i++;
      const value = header[i] === '"' ? readQuoted() : readToken();
      if (current) current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}
