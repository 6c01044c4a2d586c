// A FIFO beside a bundle (made with mkfifo, a child process): refused as not a regular file, at
// once, instead of blocking on a pipe nobody writes to.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSmallRegularFile, SmallFileError } from '../../src/util/small-file.js';
import { tempDir } from '../helpers/cli.js';

describe('small regular files beside a bundle', () => {
  let work: { path: string; remove: () => Promise<void> };
  beforeAll(async () => {
    work = await tempDir();
  });
  afterAll(() => work.remove());

  it('refuses a FIFO without blocking', async () => {
    const path = join(work.path, 'fifo.sha256');
    execFileSync('mkfifo', [path]);
    await expect(readSmallRegularFile(path, 4096)).rejects.toThrow(SmallFileError);
    await expect(readSmallRegularFile(path, 4096)).rejects.toThrow(/not a regular file \(a FIFO\)/);
  });
});
