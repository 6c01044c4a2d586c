// The CLI and every dependency in one CommonJS file, the only kind of script a Node 24 single
// executable runs (an ES module main came with 25). What the ES modules expect is provided here
// instead of read at run time:
// - `import.meta.url` (used by yargs' platform shim): the executable's own path, as `__filename` is;
// - yargs' messages: its y18n reads `locales/LANG.json` from beside the script, a file the executable
//   does not have. It is replaced by a small module holding yargs' English messages, so the executable
//   reads no file to print its help (and speaks English whatever LANG says);
// - yargs' search for a package.json above the current folder (escalade), for a version the CLI
//   sets itself: it finds nothing, so the executable reads no package.json of wherever it runs.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { NODE_VERSION } from './package-node.js';

/** The identifier `import.meta.url` becomes; defined by `package-import-meta.ts`. */
const IMPORT_META_URL = 'airgapBundleImportMetaUrl';

/**
 * Bundles `src/cli.ts` under `root` into `outFile` (CommonJS for the Node inside), `version` compiled in.
 * The output depends only on the sources and the pinned esbuild: paths in it are relative to `root`.
 */
export async function bundleCli(root: string, outFile: string, version: string): Promise<void> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, 'src', 'cli.ts')],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${NODE_VERSION.split('.')[0]}`,
    // Readable stack traces; names are kept by the code itself, not by esbuild's `__name` helper,
    // which would break the hashing worker started from a function's source (see src/util/hashing/worker-source.ts).
    minify: false,
    keepNames: false,
    sourcemap: false,
    legalComments: 'eof',
    charset: 'utf8',
    define: { AIRGAP_BUNDLE_VERSION: JSON.stringify(version), 'import.meta.url': IMPORT_META_URL },
    inject: [join(root, 'scripts', 'lib', 'package-import-meta.ts')],
    plugins: [englishMessages(root), noPackageSearch()],
    logLevel: 'silent',
  });
  const problems = [...result.errors, ...result.warnings];
  if (problems.length > 0)
    throw new Error(`esbuild: ${problems.map((p) => `${p.location?.file ?? ''}: ${p.text}`).join('; ')}`);
}

/** Resolves `y18n` to a module with yargs' English messages inside. */
function englishMessages(root: string): Plugin {
  return {
    name: 'airgap-bundle-english-messages',
    setup(b) {
      b.onResolve({ filter: /^y18n$/ }, () => ({ path: 'y18n', namespace: 'airgap-bundle-messages' }));
      b.onLoad({ filter: /.*/, namespace: 'airgap-bundle-messages' }, async () => {
        const messages = JSON.parse(await readFile(join(root, 'node_modules', 'yargs', 'locales', 'en.json'), 'utf8'));
        return { contents: messagesModule(messages), loader: 'js', resolveDir: root };
      });
    },
  };
}

/** Resolves `escalade/sync` (yargs' upward search for package.json) to one that finds nothing. */
function noPackageSearch(): Plugin {
  return {
    name: 'airgap-bundle-no-package-search',
    setup(b) {
      b.onResolve({ filter: /^escalade\/sync$/ }, () => ({ path: 'escalade', namespace: 'airgap-bundle-no-search' }));
      b.onLoad({ filter: /.*/, namespace: 'airgap-bundle-no-search' }, () => ({
        contents: 'export default function findNothing() { return undefined; }\n',
        loader: 'js',
      }));
    },
  };
}

/**
 * The part of y18n's interface yargs calls (`__`, `__n`, `setLocale`, `getLocale`, `updateLocale`),
 * over a fixed table: a message found there is printed as the table says, any other as given;
 * `%s` and `%d` are filled in by util.format, as y18n does.
 */
function messagesModule(messages: unknown): string {
  return `import { format } from 'node:util';
const english = ${JSON.stringify(messages)};
export default function messages() {
  const table = Object.assign(Object.create(null), english);
  let locale = 'en';
  const __ = (text, ...args) => format(typeof table[text] === 'string' ? table[text] : text, ...args);
  const __n = (one, other, count, ...args) => {
    const entry = table[one];
    const text = entry && typeof entry === 'object' ? entry[count === 1 ? 'one' : 'other'] : count === 1 ? one : other;
    return format(text, ...(text.includes('%d') ? [count] : []), ...args);
  };
  return {
    __,
    __n,
    setLocale: (l) => void (locale = l),
    getLocale: () => locale,
    updateLocale: (more) => void Object.assign(table, more),
    locale,
  };
}
`;
}
