import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpTransport } from '../../src/registry/http.js';

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
  return Readable.from((function* () {
    for (let sent = 0; sent < size; sent += 1 << 20) yield Buffer.alloc(Math.min(1 << 20, size - sent), 7);
  })(), { objectMode: false });
}

describe('HTTP transport watchdog', () => {
  it('keeps a slow upload alive while the server keeps reading, even past the idle timeout', async () => {
    const size = 48 * 1024 * 1024; // ~6 s at the server's pace, against a 2 s idle timeout
    const http = new HttpTransport({ idleTimeoutMs: 2000 });
    try {
      const res = await http.send({ method: 'PUT', url, headers: { 'content-length': String(size) }, body: body(size) }, undefined, 'slow upload');
      res.discard();
      expect(res.status).toBe(201);
      expect(res.headers.get('x-received')).toBe(String(size));
    } finally {
      http.close();
    }
  }, 30_000);
});
