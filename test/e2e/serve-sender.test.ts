// The blob sender over a real loopback HTTP server: pooled chunks across two files, ranges, and a
// damaged last chunk that never completes the response.
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendRange, sendWhole, type WholeOutcome } from '../../src/serve/blob-sender.js';
import type { ServedBlob } from '../../src/serve/content.js';

/** A blob of several read chunks, cut across two files at an odd offset, as a volume set cuts it. */
function blobInTwoFiles(bytes: Buffer, damage = false): ServedBlob {
  const dir = mkdtempSync(join(tmpdir(), 'sender-'));
  const cut = 700_001;
  const a = join(dir, 'vol1');
  const b = join(dir, 'vol2');
  writeFileSync(a, Buffer.concat([Buffer.alloc(123), bytes.subarray(0, cut)]));
  const rest = Buffer.from(bytes.subarray(cut));
  if (damage) rest[rest.length - 10]! ^= 1;
  writeFileSync(b, Buffer.concat([Buffer.alloc(7), rest]));
  return {
    size: bytes.length,
    mediaType: 'application/octet-stream',
    role: 'layer',
    pieces: [
      { file: a, offset: 123, size: cut },
      { file: b, offset: 7, size: bytes.length - cut },
    ],
  };
}

/** Serves the blob once over loopback; returns what the client received and how the sender ended. */
async function fetchOnce(
  blob: ServedBlob,
  digest: string,
  range?: { start: number; end: number },
): Promise<{ body: Buffer; complete: boolean; outcome?: WholeOutcome }> {
  let outcome: WholeOutcome | undefined;
  const server = http.createServer((_req, res) => {
    res.writeHead(range ? 206 : 200, { 'Content-Length': String(range ? range.end - range.start + 1 : blob.size) });
    const sent = { bytes: 0 };
    const done = range
      ? sendRange(res, blob, range, sent)
      : sendWhole(res, digest, blob, sent).then((o) => void (outcome = o));
    void done.finally(() => server.close());
  });
  const closed = new Promise((r) => server.once('close', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const got = await new Promise<{ body: Buffer; complete: boolean }>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ body: Buffer.concat(parts), complete: res.complete }));
      res.on('error', () => resolve({ body: Buffer.concat(parts), complete: false }));
    });
  });
  await closed;
  return { ...got, outcome };
}

describe('serve: sending a blob through pooled chunks', () => {
  const bytes = randomBytes(1_900_000);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

  it('sends a blob of several chunks across two files whole, byte for byte, and again from reused chunks', async () => {
    const blob = blobInTwoFiles(bytes);
    for (let i = 0; i < 3; i++) {
      const got = await fetchOnce(blob, digest);
      expect(got.outcome).toBe('sent');
      expect(got.complete).toBe(true);
      expect(got.body.equals(bytes)).toBe(true);
    }
  });

  it('sends a range that spans the cut between the files', async () => {
    const blob = blobInTwoFiles(bytes);
    const range = { start: 500_000, end: 1_300_000 };
    const got = await fetchOnce(blob, digest, range);
    expect(got.body.equals(bytes.subarray(range.start, range.end + 1))).toBe(true);
  });

  it('never completes a blob whose last chunk does not match the digest', async () => {
    const got = await fetchOnce(blobInTwoFiles(bytes, true), digest);
    expect(got.outcome).toBe('damaged');
    expect(got.complete).toBe(false);
    expect(got.body.length).toBeLessThan(bytes.length);
  });
});
