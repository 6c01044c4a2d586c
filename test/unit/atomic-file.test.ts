import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { partialPath, removeStalePartials, writeAtomically, writeFileAtomic } from '../../src/util/atomic-file.js';

/** Linux's PID_MAX_LIMIT: process ids are below it, so no process has this one. */
const NEVER_A_PID = 4_194_304;

describe('atomic output files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atomic-file-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('are written under a hidden partial name beside the final one', () => {
    expect(partialPath(join(dir, 'receipt.json'))).toBe(join(dir, `.receipt.json.partial-${process.pid}`));
  });

  it('publish the final content under the final name, with the mode asked for, and nothing else', async () => {
    const file = join(dir, 'receipt.json');
    await writeFileAtomic(file, 'old\n', 0o644);
    await writeFileAtomic(file, 'new\n', 0o600);
    expect(await readFile(file, 'utf8')).toBe('new\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['receipt.json']);
  });

  it('hand back what the writer returns, once the partial it filled is published', async () => {
    const file = join(dir, 'tool');
    const result = await writeAtomically(file, async (partial) => {
      await writeFile(partial, 'bytes');
      expect(await readdir(dir)).toEqual([`.tool.partial-${process.pid}`]);
      return 5;
    });
    expect(result).toBe(5);
    expect(await readFile(file, 'utf8')).toBe('bytes');
  });

  it('leave neither a partial nor a final file when the writer fails', async () => {
    const file = join(dir, 'tool');
    const failing = writeAtomically(file, async (partial) => {
      await writeFile(partial, 'half of it');
      throw new Error('disk gone');
    });
    await expect(failing).rejects.toThrow('disk gone');
    expect(await readdir(dir)).toEqual([]);
  });

  it('leave an existing final file as it was when the writer fails', async () => {
    const file = join(dir, 'hosts.toml');
    await writeFileAtomic(file, 'old\n');
    await expect(
      writeAtomically(file, async (partial) => {
        await writeFile(partial, 'new');
        throw new Error('cut short');
      }),
    ).rejects.toThrow('cut short');
    expect(await readFile(file, 'utf8')).toBe('old\n');
    expect(await readdir(dir)).toEqual(['hosts.toml']);
  });

  it('remove the partials of a process that is gone, with the files kept beside them, before writing', async () => {
    const file = join(dir, 'b.tar');
    await writeFile(join(dir, `.b.tar.partial-${NEVER_A_PID}`), 'stale');
    await writeFile(join(dir, `.b.tar.partial-${NEVER_A_PID}.done`), 'stale journal');
    await writeFileAtomic(file, 'bundle');
    expect(await readdir(dir)).toEqual(['b.tar']);
  });

  it('keep the partial of a process that is still running, and those of other names', async () => {
    const live = join(dir, `.b.tar.partial-${process.ppid}`);
    const other = join(dir, `.c.tar.partial-${NEVER_A_PID}`);
    await writeFile(live, 'being written');
    await writeFile(other, 'not ours');
    await removeStalePartials(join(dir, 'b.tar'));
    expect((await readdir(dir)).sort()).toEqual([`.b.tar.partial-${process.ppid}`, `.c.tar.partial-${NEVER_A_PID}`]);
  });
});
