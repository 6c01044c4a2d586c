/**
 * `npm run docs:commands`: writes docs/commands.md from the built CLI's `--help` (dist/cli.js, or
 * the executable AIRGAP_BUNDLE_CLI names), every command the top-level help lists.
 *
 *   tsx scripts/docs-commands.ts
 */
import { execFile } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { commandNames, commandsPage } from './docs-commands-page.js';

const root = resolve(import.meta.dirname, '..');

/** `airgap-bundle ARGS` run as the docs are read: piped (100 columns), English, no colour. */
function helpOf(args: string[]): Promise<string> {
  const executable = process.env.AIRGAP_BUNDLE_CLI;
  const [file, argv] = executable ? [executable, args] : [process.execPath, [join(root, 'dist', 'cli.js'), ...args]];
  return new Promise((done, fail) =>
    execFile(file, argv, { env: { ...process.env, LANG: 'C' } }, (err, stdout, stderr) =>
      err ? fail(new Error(`airgap-bundle ${args.join(' ')}: ${stderr.trim() || err.message}`)) : done(stdout),
    ),
  );
}

async function main(): Promise<void> {
  const top = await helpOf(['--help']);
  const commands = await Promise.all(
    commandNames(top).map(async (name) => ({ name, help: await helpOf([name, '--help']) })),
  );
  const out = join(root, 'docs', 'commands.md');
  await writeFile(`${out}.partial-${process.pid}`, commandsPage(top, commands));
  await rename(`${out}.partial-${process.pid}`, out);
  process.stdout.write(`wrote ${out} (${commands.length} commands)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`docs-commands: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
