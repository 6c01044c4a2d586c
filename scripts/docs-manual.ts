/**
 * The manual, built from docs/*.md: the pages as `airgap-bundle help` prints them, and one
 * self-contained HTML file (`airgap-bundle-docs.html`, what `export --with-tool` puts beside the
 * executable) rendered with `marked`. Links between pages become links inside the file; it loads
 * nothing from anywhere (no script, no style sheet, no image, no font).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Marked, type Tokens } from 'marked';
import { isPageName, pageTitle, type Manual, type ManualPage } from '../src/docs/manual.js';

/** The order pages are listed in; any other page follows, by name. */
const ORDER = [
  'commands',
  'guide',
  'talos',
  'talos-factory',
  'charts',
  'charts-images',
  'files',
  'security',
  'bundle-format',
  'compatibility',
  'performance',
  'development',
];

/** Every page of `root/docs`, in the manual's order; a file name that is no page name is refused. */
export async function readPages(root: string): Promise<ManualPage[]> {
  const names = (await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => f.slice(0, -3));
  const bad = names.filter((n) => !isPageName(n));
  if (bad.length > 0) throw new Error(`docs/: ${bad.join(', ')}.md: page names are lowercase words joined by -`);
  const rank = (n: string) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return Promise.all(
    names.map(async (name) => {
      const markdown = await readFile(join(root, 'docs', `${name}.md`), 'utf8');
      return { name, title: pageTitle(name, markdown), markdown };
    }),
  );
}

/** The manual of the checkout at `root`. */
export async function buildManual(root: string): Promise<Manual> {
  const pages = await readPages(root);
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  return { pages, html: manualHtml(readme, pages) };
}

/** A heading's anchor as GitHub makes it: lowercase, punctuation dropped, spaces as `-`. */
export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/<[^>]*>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-');
}

/** A link target inside the file: `talos.md#talos-cache` → `#talos--talos-cache`; others as written. */
function internalHref(href: string, pages: Set<string>): string {
  const m = /^(?:\.\/)?(?:docs\/)?([a-z0-9-]+)\.md(?:#(.*))?$/.exec(href);
  if (!m || !pages.has(m[1]!)) return href;
  return m[2] ? `#${m[1]}--${m[2]}` : `#${m[1]}`;
}

/** One page as HTML, its headings anchored under the page's name and its links made internal. */
function pageHtml(name: string, markdown: string, pages: Set<string>): string {
  const marked = new Marked({ gfm: true });
  marked.use({
    renderer: {
      heading(this: { parser: { parseInline(t: Tokens.Generic[]): string } }, { tokens, depth, text }: Tokens.Heading) {
        return `<h${depth} id="${name}--${slug(text)}">${this.parser.parseInline(tokens)}</h${depth}>\n`;
      },
    },
    walkTokens(token) {
      if (token.type === 'link') token.href = internalHref(token.href, pages);
    },
  });
  return `<section id="${name}">\n${marked.parse(markdown, { async: false })}</section>\n`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:62rem;margin:0 auto;padding:0 1rem 4rem;color:#1b1b1b}
nav{border-bottom:1px solid #ccc;padding:1rem 0}nav a{margin-right:1rem}
section{border-top:2px solid #ddd;margin-top:3rem}
code,pre{font:14px/1.4 ui-monospace,monospace;background:#f4f4f4}pre{padding:.75rem;overflow-x:auto}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top;text-align:left}`;

/** The whole manual in one HTML file: the README first, then every page. */
export function manualHtml(readme: string, pages: ManualPage[]): string {
  const names = new Set(pages.map((p) => p.name));
  const nav = pages.map((p) => `<a href="#${p.name}">${escapeHtml(p.title)}</a>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>airgap-bundle manual</title>
<style>${STYLE}</style>
</head>
<body>
<nav><a href="#readme">Overview</a>
${nav}</nav>
${pageHtml('readme', readme, names)}${pages.map((p) => pageHtml(p.name, p.markdown, names)).join('')}</body>
</html>
`;
}
