// The pieces that keep the docs and the CLI together: the commands page from --help texts, the
// terminal rendering of a page, the manual's shape and its one-file HTML.
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandNames, commandsPage } from '../../scripts/docs-commands-page.js';
import { buildManual, manualHtml, slug } from '../../scripts/docs-manual.js';
import { parseManual } from '../../src/docs/manual.js';
import { renderForTerminal } from '../../src/docs/terminal.js';

const ROOT = resolve(import.meta.dirname, '../..');

const TOP = `airgap-bundle <command> [options]

Commands:
  airgap-bundle images [images..]       Print the resolved image list (normalised, merged, with
                                        where each came from) without downloading
  airgap-bundle talos-cache <bundle..>  Build a Talos image cache
  airgap-bundle newcmd                  Something added later

Options:
      --version  Show version number                                                       [boolean]
`;

describe('docs/commands.md from --help', () => {
  it('takes the commands from the top-level help, continuation lines and options left out', () => {
    expect(commandNames(TOP)).toEqual(['images', 'talos-cache', 'newcmd']);
    expect(() => commandNames('airgap-bundle <command>\n\nOptions:\n  --help\n')).toThrow(/no "Commands:"/);
  });

  it('quotes each help whole in a text block, with trailing padding cut', () => {
    const page = commandsPage(TOP, [
      { name: 'images', help: 'airgap-bundle images\n\n  -f  a file      \n' },
      { name: 'newcmd', help: 'airgap-bundle newcmd\n' },
    ]);
    expect(page).toContain('## images\n\n```text\nairgap-bundle images\n\n  -f  a file\n```\n');
    expect(page).toContain('## newcmd\n\n```text\nairgap-bundle newcmd\n```\n');
    expect(page).toContain('Commands: [images](#images), [newcmd](#newcmd).');
    expect(page.endsWith('```\n')).toBe(true);
    expect(() => commandsPage(TOP, [{ name: 'x', help: 'a ``` b' }])).toThrow(/cannot be fenced/);
  });
});

describe('a page in the terminal', () => {
  const page = [
    '# The title',
    '',
    'See [talos.md](talos.md#x), [the spec](https://example.org/spec) and **this** *word*; `--format talos`.',
    '',
    '## A section',
    '',
    '```sh',
    'airgap-bundle verify talos.tar',
    '```',
    '',
    '| a | b |',
    '| --- | --- |',
    '| `x\\|y` | two |',
    '',
    '<!-- not shown -->',
  ].join('\n');

  it('plain when piped: underlined headings, indented code, aligned tables, links with their target', () => {
    const text = renderForTerminal(page, { color: false, width: 100 });
    expect(text).toContain('The title\n=========\n');
    expect(text).toContain('A section\n---------\n');
    expect(text).toContain('\n    airgap-bundle verify talos.tar\n');
    expect(text).toContain(
      'See airgap-bundle help talos, the spec (https://example.org/spec) and this word; `--format talos`.',
    );
    expect(text).toContain('a      b\n`x|y`  two');
    expect(text).not.toMatch(/```|<!--|\u001b/);
  });

  it('a table wider than the terminal becomes one record per row', () => {
    const text = renderForTerminal('| name | meaning |\n| --- | --- |\n| --long | a very long meaning |\n', {
      color: false,
      width: 20,
    });
    expect(text).toBe('* --long\n    meaning: a very long meaning\n');
  });

  it('colour only when asked: bold headings, cyan code', () => {
    const text = renderForTerminal(page, { color: true, width: 100 });
    expect(text).toContain('\u001b[1mTHE TITLE\u001b[0m');
    expect(text).toContain('\u001b[36m--format talos\u001b[0m');
  });
});

describe('the manual', () => {
  it('holds every docs page, and refuses a built manual whose page name could be a path', async () => {
    const manual = await buildManual(ROOT);
    const files = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'));
    expect(manual.pages.map((p) => `${p.name}.md`).sort()).toEqual(files.sort());
    expect(parseManual(JSON.parse(JSON.stringify(manual)))).toEqual(manual);
    const bad = { ...manual, pages: [{ name: '../etc', title: 't', markdown: '' }] };
    expect(() => parseManual(bad)).toThrow(/valid name/);
    expect(() => parseManual({ pages: 'x' })).toThrow(/malformed/);
  });

  it('HTML: one self-contained file, links between pages made internal, headings anchored', () => {
    const html = manualHtml('# Readme\n\nSee [docs/talos.md](docs/talos.md#talos-cache).\n', [
      { name: 'talos', title: 'Talos', markdown: '# Talos\n\n## talos-cache\n\n[out](https://example.org)\n' },
    ]);
    expect(html).toContain('<a href="#talos--talos-cache">docs/talos.md</a>');
    expect(html).toContain('<h2 id="talos--talos-cache">talos-cache</h2>');
    expect(html).toContain('<a href="https://example.org">out</a>');
    expect(html).not.toMatch(/<(script|link|img|iframe)\b|\bsrc=|url\(/i);
    expect(slug('Packaging: `npm run package`')).toBe('packaging-npm-run-package');
  });
});
