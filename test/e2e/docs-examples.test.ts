// The docs cannot rot: every ```sh runnable block of README.md and docs/*.md runs against a real
// Distribution registry seeded with the sample images, docs/commands.md is regenerated from the
// CLI's --help and compared, and `help` and `completion` are run as a user runs them.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../scripts/lib/registry.js';
import { generateSampleImages, seedRegistry } from '../../scripts/lib/samples.js';
import { commandNames, commandsPage } from '../../scripts/docs-commands-page.js';
import { cliCommand, runCli, tempDir } from '../helpers/cli.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** The address the docs give the isolated registry; the test's registry stands in for it. */
const DOCUMENTED_REGISTRY = '10.5.0.1:5000';

/** The fenced blocks opened with ```sh runnable (indented ones inside lists too), in order. */
function runnableBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  for (const m of markdown.matchAll(/^( *)```sh runnable\n([\s\S]*?)^\1```$/gm))
    blocks.push(
      m[2]!
        .split('\n')
        .map((l) => l.slice(m[1]!.length))
        .join('\n'),
    );
  return blocks;
}

function shellWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

let registry: RunningRegistry;
let work: { path: string; remove: () => Promise<void> };
let bin: string;

beforeAll(async () => {
  work = await tempDir('airgap-docs-');
  // One registry plays both sides: the connected side's registries (every export goes through it as
  // the '*' mirror) and the isolated registry the docs call 10.5.0.1:5000.
  registry = await startRegistry();
  const images = await generateSampleImages(join(work.path, 'samples'));
  await seedRegistry(registry, images);
  bin = join(work.path, 'bin');
  mkdirSync(bin);
  const list = join(work.path, 'talos.images');
  writeFileSync(list, `${images.map((i) => i.upstream).join('\n')}\n`);
  // `talosctl images …` stands in for the real one: it prints the sample list.
  writeFileSync(join(bin, 'talosctl'), `#!/bin/sh\nexec cat ${shellWord(list)}\n`);
  const [file, args] = cliCommand([]);
  const cli = [file, ...args].map(shellWord).join(' ');
  writeFileSync(
    join(bin, 'airgap-bundle'),
    `#!/bin/sh\nif [ "$1" = export ]; then shift; set -- export --registry-mirror ${shellWord(`*=${registry.url}`)} "$@"; fi\nexec ${cli} "$@"\n`,
  );
  for (const f of ['talosctl', 'airgap-bundle']) chmodSync(join(bin, f), 0o755);
});

afterAll(async () => {
  await registry?.stop();
  await work?.remove();
});

describe('runnable examples', () => {
  const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
    f.endsWith('.md'),
  );
  const withBlocks = files.filter((f) => runnableBlocks(readFileSync(join(ROOT, f), 'utf8')).length > 0);

  it('the README holds the recipe as runnable blocks: export, verify, import, talos-cache, mirror patch', () => {
    const text = runnableBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8')).join('\n');
    for (const step of ['export', 'verify', 'import', 'talos-cache', 'mirror-config'])
      expect(text).toContain(`airgap-bundle ${step} `);
  });

  it.each(withBlocks)('%s: every runnable block succeeds, in order', async (file) => {
    const dir = join(work.path, file.replace(/\W/g, '_'));
    mkdirSync(dir);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, DOCKER_CONFIG: '/nonexistent-docker-config' };
    for (const block of runnableBlocks(readFileSync(join(ROOT, file), 'utf8'))) {
      const script = block.replaceAll(DOCUMENTED_REGISTRY, registry.host);
      const res = await bash(script, dir, env);
      expect(res.code, `${file}:\n${block}\n${res.output}`).toBe(0);
    }
    if (file === 'README.md') {
      // What the recipe promises: the cache for the imager, and the 1.12 documents.
      expect(existsSync(join(dir, 'image-cache.oci', 'index.json'))).toBe(true);
      const patch = readFileSync(join(dir, 'mirror.yaml'), 'utf8');
      expect(patch).toContain('kind: RegistryMirrorConfig');
      expect(patch).toContain(`http://${registry.host}`);
    }
  });
});

describe('the reference matches the CLI', () => {
  it('docs/commands.md is what --help of every command prints (rerun `npm run docs:commands`)', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    const names = commandNames(top.stdout);
    expect(names).toEqual(expect.arrayContaining(['export', 'import', 'help', 'completion']));
    const commands = await Promise.all(
      names.map(async (name) => {
        const res = await runCli([name, '--help']);
        expect(res.code, name).toBe(0);
        return { name, help: res.stdout };
      }),
    );
    expect(commandsPage(top.stdout, commands)).toBe(readFileSync(join(ROOT, 'docs', 'commands.md'), 'utf8'));
  });
});

describe('help and completion', () => {
  it('help lists every page, prints one as plain text when piped, and refuses an unknown one (exit 2)', async () => {
    const [list, page, unknown] = await Promise.all([
      runCli(['help']),
      runCli(['help', 'talos']),
      runCli(['help', '../README']),
    ]);
    expect(list.code).toBe(0);
    for (const f of readdirSync(join(ROOT, 'docs')).filter((n) => n.endsWith('.md')))
      expect(list.stdout).toMatch(new RegExp(`^  ${f.slice(0, -3)} `, 'm'));
    expect(page.code).toBe(0);
    expect(page.stdout).toMatch(/^Image lists by era\n-{18}$/m);
    expect(page.stdout).not.toContain('\u001b');
    expect(page.stdout).not.toContain('```');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no page "\.\.\/README" in the manual: pick one of .*talos/);
  });

  it('completion prints the bash and zsh scripts, and answers them for the command typed', async () => {
    const [bashScript, zshScript, words] = await Promise.all([
      runCli(['completion', 'bash'], { env: { SHELL: '/bin/zsh' } }),
      runCli(['completion', 'zsh'], { env: { SHELL: '/bin/bash' } }),
      runCli(['--get-yargs-completions', 'airgap-bundle', 'export', '--']),
    ]);
    expect(bashScript.stdout).toContain('complete -o bashdefault -o default -F _airgap-bundle_yargs_completions');
    expect(zshScript.stdout).toMatch(/^#compdef airgap-bundle$/m);
    expect(words.code).toBe(0);
    expect(words.stdout.split('\n')).toEqual(expect.arrayContaining(['--with-tool', '--volume-size']));
  });
});
