import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256Thread } from '../src/core/sha256-thread.js';

describe('the sha256 of a whole image hashed on its own thread', () => {
  it('equals sha256 of the same bytes, digest after digest, for owned and shared buffers alike', async () => {
    const hasher = new Sha256Thread(2);
    try {
      for (let round = 0; round < 3; round++) {
        const parts = Array.from({ length: 20 }, (_, i) => randomBytes(1000 + i * 997 + round));
        const expected = createHash('sha256');
        for (const p of parts) expected.update(p);
        for (const [i, p] of parts.entries()) {
          // Every other part is a view into a larger buffer: it must be copied, not moved.
          const data = i % 2 ? Buffer.from(Buffer.concat([Buffer.alloc(3), p]).subarray(3)) : Buffer.from(p);
          await hasher.update(data);
        }
        expect(await hasher.digest()).toBe(expected.digest('hex'));
      }
      expect(await hasher.digest()).toBe(createHash('sha256').digest('hex'));
    } finally {
      await hasher.close();
    }
  });
});

describe('the hashing thread sharing the per-page hashes', () => {
  it('hands each buffer back with the truncated sha256 of each slice asked for, and the digest still covers every byte', async () => {
    const hasher = new Sha256Thread(2);
    try {
      const expected = createHash('sha256');
      for (let round = 0; round < 5; round++) {
        const pages = 16 + round;
        const data = hasher.spare(pages * 512);
        randomBytes(pages * 512).copy(data);
        const copy = Buffer.from(data);
        expected.update(copy);
        const from = round; // the caller hashed the first `round` pages itself
        const back = await hasher.hashed(data, { size: 512, width: 8, from });
        expect(back.data.equals(copy)).toBe(true);
        const want = Buffer.concat(Array.from({ length: pages - from }, (_, i) => createHash('sha256').update(copy.subarray((from + i) * 512, (from + i + 1) * 512)).digest().subarray(0, 8)));
        expect(back.hashes.equals(want)).toBe(true);
        hasher.recycle(back.data);
        // The same memory comes back for the next chunk of that size.
        expect(hasher.spare(pages * 512).buffer).toBe(back.data.buffer);
      }
      expect(await hasher.digest()).toBe(expected.digest('hex'));
    } finally {
      await hasher.close();
    }
  });
});
