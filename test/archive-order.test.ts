import { describe, expect, it } from 'vitest';
import { checkCost, restoreFriendlyOrder, unpackCost, type ArchiveCandidate } from '../src/snapshot/archive-order.js';

const MB = 1e6;

describe('restoreFriendlyOrder: the archive order that lets a restore check each database while the rest unpacks', () => {
  const golden: Array<[string, ArchiveCandidate[], string[]]> = [
    [
      // bench/restore's set: events is small on disk but holds 1.18M rows, so its check outlasts its
      // unpacking and goes first; the rest follow by check cost, the quickest to check last.
      'the benchmark set',
      [
        { name: 'tasks', bytes: 117.5 * MB, rows: 224_200 },
        { name: 'messages', bytes: 209.1 * MB, rows: 109_000 },
        { name: 'entities', bytes: 114.4 * MB, rows: 188_000 },
        { name: 'events', bytes: 85.5 * MB, rows: 1_182_000 },
        { name: 'projects', bytes: 72.6 * MB, rows: 8_500 },
      ],
      ['events', 'messages', 'tasks', 'entities', 'projects'],
    ],
    ['no previous snapshot: largest first', [{ name: 'a', bytes: 1 * MB }, { name: 'b', bytes: 30 * MB }, { name: 'c', bytes: 5 * MB }], ['b', 'c', 'a']],
    [
      'two row-heavy databases: the quicker to unpack first',
      [
        { name: 'big_log', bytes: 40 * MB, rows: 2_000_000 },
        { name: 'small_log', bytes: 4 * MB, rows: 200_000 },
        { name: 'notes', bytes: 100 * MB, rows: 1_000 },
      ],
      ['small_log', 'big_log', 'notes'],
    ],
    ['ties break by name', [{ name: 'b', bytes: MB }, { name: 'a', bytes: MB }], ['a', 'b']],
    ['empty', [], []],
  ];
  for (const [label, input, expected] of golden) {
    it(label, () => {
      expect(restoreFriendlyOrder(input)).toEqual(expected);
    });
  }

  it('is a permutation of its input whatever the figures', () => {
    const input = Array.from({ length: 12 }, (_, i) => ({ name: `db${i}`, bytes: ((i * 7919) % 13) * MB, rows: ((i * 104_729) % 17) * 50_000 }));
    const order = restoreFriendlyOrder(input);
    expect([...order].sort()).toEqual(input.map((c) => c.name).sort());
    // Johnson's rule: every check-bound database comes before every unpack-bound one.
    const checkBound = new Set(input.filter((c) => unpackCost(c) < checkCost(c)).map((c) => c.name));
    const firstUnpackBound = order.findIndex((n) => !checkBound.has(n));
    expect(order.slice(firstUnpackBound === -1 ? order.length : firstUnpackBound).some((n) => checkBound.has(n))).toBe(false);
  });
});
