import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpTransport } from '../../src/registry/http.js';
import { RegistryError } from '../../src/registry/errors.js';

/** A server that reads request bodies at a fixed slow rate, then answers 201. */
let server: Server;
let url: string;
const RATE = 8 * 1024 * 1024; // bytes per second

beforeAll(async () => {
  server = createServer((req, res) => {
    let got = 0;
    req.on('data', (c: Buffer) => {
      got += c.length;
      req.pause();
      setTimeout(() => req.resume(), (c.length / RATE) * 1000);
    });
    req.on('end', () => {
      res.writeHead(201, { 'x-received': String(got) });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  url = `http://127.0.0.1:${addr.port}/upload`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

function body(size: number): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < size; sent += 1 << 20) yield Buffer.alloc(Math.min(1 << 20, size - sent), 7);
    })(),
    { objectMode: false },
  );
}

describe('HTTP transport watchdog', () => {
  it('keeps a slow upload alive while the server keeps reading, even past the idle timeout', async () => {
    const size = 48 * 1024 * 1024; // ~6 s at the server's pace, against a 2 s idle timeout
    const http = new HttpTransport({ idleTimeoutMs: 2000 });
    try {
      const res = await http.send(
        { method: 'PUT', url, headers: { 'content-length': String(size) }, body: body(size) },
        undefined,
        'slow upload',
      );
      res.discard();
      expect(res.status).toBe(201);
      expect(res.headers.get('x-received')).toBe(String(size));
    } finally {
      http.close();
    }
  }, 30_000);
});

/** A server that answers bodies at a chosen pace: a byte at a time, or all at once. */
let paced: Server;
let pacedUrl: string;
const TRICKLE_BYTES = 200;
const BULK_BYTES = 1024 * 1024;
const timers = new Set<NodeJS.Timeout>();

beforeAll(async () => {
  paced = createServer((req, res) => {
    if (req.url === '/bulk') {
      res.writeHead(200, { 'content-length': String(BULK_BYTES) });
      return void res.end(Buffer.alloc(BULK_BYTES, 1));
    }
    // One byte every 50 ms: the idle timer never fires, yet 200 bytes take 10 s.
    res.writeHead(200, { 'content-length': String(TRICKLE_BYTES) });
    let sent = 0;
    const tick = () => {
      if (res.destroyed || sent >= TRICKLE_BYTES) return void res.end();
      res.write(Buffer.from([0x61]));
      sent++;
      const t = setTimeout(() => {
        timers.delete(t);
        tick();
      }, 50);
      timers.add(t);
    };
    tick();
  });
  await new Promise<void>((r) => paced.listen(0, '127.0.0.1', r));
  pacedUrl = `http://127.0.0.1:${(paced.address() as { port: number }).port}`;
});

afterAll(() => {
  for (const t of timers) clearTimeout(t);
  paced.closeAllConnections();
  return new Promise<void>((r) => paced.close(() => r()));
});

describe('HTTP transport pace floor', () => {
  it('abandons a body fed a byte at a time, though every byte re-arms the idle timer, as a retryable stall', async () => {
    const http = new HttpTransport({ idleTimeoutMs: 5000, rateWindowMs: 500, minBytesPerSecond: 1024 });
    try {
      const res = await http.send({ method: 'GET', url: `${pacedUrl}/trickle` }, undefined, 'trickled body');
      const err = await res.buffer(1024).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).message).toMatch(/slower than 1024 bytes\/s .* trickled body/);
      expect((err as RegistryError).retryable).toBe(true);
    } finally {
      http.close();
    }
  }, 8_000);

  it("keeps a fast body that our own reader takes slowly: the time the reader holds it back is not the link's", async () => {
    const http = new HttpTransport({ idleTimeoutMs: 5000, rateWindowMs: 500, minBytesPerSecond: 1024 * 1024 });
    try {
      const res = await http.send({ method: 'GET', url: `${pacedUrl}/bulk` }, undefined, 'bulk body');
      let got = 0;
      for await (const chunk of res.body) {
        got += (chunk as Buffer).length;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(got).toBe(BULK_BYTES);
    } finally {
      http.close();
    }
  }, 20_000);
});
