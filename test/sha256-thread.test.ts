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
