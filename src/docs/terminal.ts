/**
 * A docs page as terminal text: headings underlined, code blocks indented, tables as aligned
 * columns when they fit (else one record per row), links as their text and target. Colour (bold
 * headings, cyan code) only when asked, i.e. when stdout is a terminal: piped output is plain text.
 */
export interface TerminalStyle {
  color: boolean;
  /** Columns available; tables wider than this are printed as records. */
  width: number;
}

const BOLD = '\u001b[1m';
const CYAN = '\u001b[36m';
const RESET = '\u001b[0m';

/** `markdown` rendered for a terminal. */
export function renderForTerminal(markdown: string, style: TerminalStyle): string {
  const lines = markdown.replace(/<!--[\s\S]*?-->\n?/g, '').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length;) {
    const line = lines[i]!;
    if (/^\s*```/.test(line)) i = codeBlock(lines, i, out);
    else if (line.startsWith('|')) i = table(lines, i, out, style);
    else {
      out.push(/^#{1,6} /.test(line) ? heading(line, style) : inline(line, style));
      i++;
    }
  }
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()}\n`;
}

/** A fenced block from `start`, indented by four columns; returns the line after its closing fence. */
function codeBlock(lines: string[], start: number, out: string[]): number {
  const indent = /^\s*/.exec(lines[start]!)![0];
  let i = start + 1;
  for (; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++)
    out.push(`    ${lines[i]!.startsWith(indent) ? lines[i]!.slice(indent.length) : lines[i]!}`);
  return i + 1;
}

function heading(line: string, style: TerminalStyle): string {
  const level = /^#+/.exec(line)![0].length;
  const text = plainInline(line.slice(level + 1).trim());
  if (style.color) return `${BOLD}${level === 1 ? text.toUpperCase() : text}${RESET}`;
  if (level > 2) return text;
  return `${text}\n${(level === 1 ? '=' : '-').repeat(Math.min(text.length, style.width))}`;
}

/** The cells of one table row; `\|` is a literal bar. */
function cells(row: string): string[] {
  return row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim().replace(/\\\|/g, '|'));
}

/** A table from `start`: aligned when it fits, else records; returns the line after it. */
function table(lines: string[], start: number, out: string[], style: TerminalStyle): number {
  let i = start;
  const rows: string[][] = [];
  for (; i < lines.length && lines[i]!.startsWith('|'); i++)
    if (!/^\|[\s:|-]+\|?\s*$/.test(lines[i]!)) rows.push(cells(lines[i]!).map((c) => plainInline(c)));
  const [header, ...body] = rows;
  if (!header) return i;
  const widths = header.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const fits = widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1) <= style.width;
  if (fits) {
    for (const r of rows)
      out.push(
        r
          .map((c, k) => c.padEnd(widths[k]!))
          .join('  ')
          .trimEnd(),
      );
    return i;
  }
  for (const r of body) {
    out.push(`* ${r[0] || header[0]}`);
    for (let c = 1; c < header.length; c++) if (r[c]) out.push(`    ${header[c] || '-'}: ${r[c]}`);
  }
  return i;
}

/** Inline markup of a line, code spans coloured when colour is on. */
function inline(line: string, style: TerminalStyle): string {
  return line
    .split(/(`+[^`]*`+)/)
    .map((part, k) =>
      k % 2 === 1 ? (style.color ? `${CYAN}${part.replace(/^`+|`+$/g, '')}${RESET}` : part) : prose(part),
    )
    .join('');
}

/** Inline markup without colour, for headings and table cells. */
function plainInline(text: string): string {
  return inline(text, { color: false, width: 0 });
}

/** Emphasis dropped, links as `text (target)`; a link to another page names the `help` topic. */
function prose(text: string): string {
  return text
    .replace(/\[([^\]]*)\]\(([^)\s]+)\)/g, (_, label: string, target: string) => {
      const page = /^(?:docs\/)?([a-z0-9-]+)\.md(#.*)?$/.exec(target);
      if (page)
        return label === target.replace(/#.*/, '')
          ? `airgap-bundle help ${page[1]}`
          : `${label} (airgap-bundle help ${page[1]})`;
      return target === label ? label : `${label} (${target})`;
    })
    .replace(/\*\*([^*]+)\*\*/g, '$1')
    .replace(/(^|[\s(])\*([^*\s][^*]*)\*(?=[\s.,;:)]|$)/g, '$1$2');
}
