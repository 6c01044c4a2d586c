import { open, readFile, type FileHandle } from 'node:fs/promises';

const DIGEST_LINE = /^sha256:[0-9a-f]{64}$/;

/**
 * The journal beside a partial bundle: a first line that identifies the bundle
 * being written, then the digest of each blob whose bytes were handed to the
 * file. A rerun re-hashes what it lists before trusting it, so a line lost in a
 * crash only costs a download again.
 *
 * One handle stays open in append mode for the whole run, and lines added
 * while a write is in flight go out together in the next one: at thousands of
 * small blobs, opening the file for each line cost more CPU than the blobs.
 */
export class Journal {
  private pending: string[] = [];
  private next: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();

  private constructor(private readonly fh: FileHandle) {}

  /** Starts a new journal whose first line is `key`. */
  static async create(path: string, key: string): Promise<Journal> {
    const fh = await open(path, 'w');
    const journal = new Journal(fh);
    await journal.add(key);
    return journal;
  }

  /** Goes on appending to the journal of a partial bundle taken over. */
  static async reopen(path: string): Promise<Journal> {
    return new Journal(await open(path, 'a'));
  }

  /** The key and the blobs a journal lists; nothing when it cannot be read. */
  static async read(path: string): Promise<{ key: string | undefined; digests: Set<string> }> {
    const lines = await readFile(path, 'utf8').then(
      (t) => t.split('\n'),
      () => [],
    );
    return { key: lines[0], digests: new Set(lines.slice(1).filter((l) => DIGEST_LINE.test(l))) };
  }

  /** Appends a line; resolves once it is written (with the lines added alongside it). */
  add(line: string): Promise<void> {
    this.pending.push(`${line}\n`);
    if (!this.next) {
      // A failed write fails its own lines only; the next batch still gets its chance.
      this.next = this.tail
        .catch(() => undefined)
        .then(() => {
          const text = this.pending.join('');
          this.pending = [];
          this.next = undefined;
          return this.writeAll(text);
        });
      this.tail = this.next;
    }
    return this.next;
  }

  async close(): Promise<void> {
    await this.tail.catch(() => undefined);
    await this.fh.close().catch(() => undefined);
  }

  private async writeAll(text: string): Promise<void> {
    let bytes = Buffer.from(text);
    while (bytes.length > 0) {
      const { bytesWritten } = await this.fh.write(bytes);
      bytes = bytes.subarray(bytesWritten);
    }
  }
}
