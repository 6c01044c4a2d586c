import { readFile } from 'node:fs/promises';

/**
 * The manual: every page of docs/, as `npm run build` collects it into `dist/docs/manual.json`
 * (`scripts/docs-build.ts`), with the one HTML file rendered from them. The single executable
 * carries the same object inside (`npm run package` sets it before the CLI starts), so it reads no
 * file for it.
 */
export interface Manual {
  pages: ManualPage[];
  /** `airgap-bundle-docs.html`: every page in one self-contained file. */
  html: string;
}

export interface ManualPage {
  /** The file name without `.md`: the topic `help` takes. */
  name: string;
  /** The page's first heading. */
  title: string;
  markdown: string;
}

/** Where `npm run package` leaves the manual for the executable (see scripts/package.ts). */
export const EMBEDDED_MANUAL_KEY = 'airgapBundleManual';

/** A page name: what a docs file may be called, so a topic never names a path. */
const PAGE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** The manual, from the executable itself or from beside the built CLI; a clear error without one. */
export async function loadManual(): Promise<Manual> {
  const embedded = (globalThis as Record<string, unknown>)[EMBEDDED_MANUAL_KEY];
  if (embedded !== undefined) return parseManual(embedded);
  const file = new URL('./manual.json', import.meta.url);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(`the manual is not built (no ${file.pathname}): run \`npm run build\``, { cause: err });
    throw err;
  }
  return parseManual(JSON.parse(text));
}

/** The manual's shape checked once: a build of another version must not crash the reader. */
export function parseManual(value: unknown): Manual {
  const m = value as Partial<Manual> | null;
  if (typeof m !== 'object' || m === null || !Array.isArray(m.pages) || typeof m.html !== 'string')
    throw new Error('the built manual is malformed: rebuild with `npm run build`');
  const pages = m.pages.map((p: Partial<ManualPage>) => {
    if (typeof p.name !== 'string' || !PAGE_NAME.test(p.name) || typeof p.title !== 'string')
      throw new Error('the built manual has a page without a valid name: rebuild with `npm run build`');
    if (typeof p.markdown !== 'string') throw new Error(`the built manual's page ${p.name} has no text`);
    return { name: p.name, title: p.title, markdown: p.markdown };
  });
  return { pages, html: m.html };
}

/** Whether `name` is a valid page name (what docs/ files are checked against at build). */
export function isPageName(name: string): boolean {
  return PAGE_NAME.test(name);
}

/** The page's title: its first `# ` heading, else its name. */
export function pageTitle(name: string, markdown: string): string {
  const heading = /^# (.+)$/m.exec(markdown);
  return heading ? heading[1]!.trim() : name;
}
