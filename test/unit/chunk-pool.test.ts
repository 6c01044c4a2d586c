import { describe, expect, it } from 'vitest';
import { ChunkPool } from '../../src/serve/chunk-pool.js';

describe('serve: the chunk pool', () => {
  const settle = () => new Promise((r) => setTimeout(r, 20));

  it('hands a released chunk out again, whole, whichever view of it comes back', async () => {
    const pool = new ChunkPool(1024, 2);
    const a = await pool.take();
    pool.release(a.subarray(0, 10));
    const again = await pool.take();
    expect(again.buffer).toBe(a.buffer);
    expect(again.length).toBe(1024);
  });

  it('never allocates beyond its capacity: readers wait, first come first served, for chunks released', async () => {
    const pool = new ChunkPool(1024, 2);
    const [a, b] = [await pool.take(), await pool.take()];
    const got: Buffer[] = [];
    const third = pool.take().then((x) => got.push(x));
    const fourth = pool.take().then((x) => got.push(x));
    await settle();
    expect(got).toHaveLength(0);
    pool.release(b);
    await third;
    expect(got.map((x) => x.buffer)).toEqual([b.buffer]);
    pool.release(a);
    await fourth;
    expect(got.map((x) => x.buffer)).toEqual([b.buffer, a.buffer]);
  });

  it('keeps nothing that it did not hand out', async () => {
    const pool = new ChunkPool(1024, 1);
    const owned = await pool.take();
    const foreign = Buffer.alloc(1024);
    pool.release(foreign);
    let got: Buffer | undefined;
    const next = pool.take().then((x) => (got = x));
    await settle();
    expect(got).toBeUndefined();
    pool.release(owned);
    await next;
    expect(got!.buffer).toBe(owned.buffer);
  });
});
