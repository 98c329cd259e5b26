import { describe, expect, it } from 'vitest';
import { parseReadData, pickRolling, sampleShare } from '../src/check/sample.js';
import { Rng } from './support/sqlite-gen.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `s${String(i).padStart(3, '0')}`);

describe('which snapshots a check reads in full', () => {
  it('a share reads that share of the snapshots (at least one), in their order, and none twice', () => {
    const rng = new Rng(7);
    for (const n of [1, 2, 9, 50, 101]) {
      for (const share of [0.01, 0.1, 0.25, 0.5, 1]) {
        const got = sampleShare(ids(n), share, () => rng.next());
        expect(got.length).toBe(Math.max(1, Math.ceil(n * share)));
        expect(new Set(got).size).toBe(got.length);
        expect(got).toEqual(ids(n).filter((id) => got.includes(id)));
      }
    }
    expect(sampleShare([], 0.5)).toEqual([]);
    expect(() => sampleShare(ids(3), 0)).toThrow(/share/);
  });

  it('the rolling schedule reads every snapshot at least once per period, never-read and least recently read first', () => {
    const rng = new Rng(11);
    for (const [n, period] of [
      [52, 7],
      [10, 30],
      [3, 1],
      [100, 7],
    ] as const) {
      const all = ids(n);
      const lastRead = new Map<string, number>();
      const readAt = new Map<string, number[]>();
      for (let day = 0; day < period * 4; day++) {
        for (const id of pickRolling(all, lastRead, { runsPerPeriod: period, random: () => rng.next() })) {
          lastRead.set(id, day);
          readAt.set(id, [...(readAt.get(id) ?? []), day]);
        }
      }
      for (const id of all) {
        const days = [-1, ...(readAt.get(id) ?? []), period * 4];
        // No gap between reads (or before the first / after the last) longer than a period.
        for (let i = 1; i < days.length; i++) expect(days[i]! - days[i - 1]!, `${n}/${period} ${id}`).toBeLessThanOrEqual(period);
      }
    }
  });

  it('a new snapshot is read before ones already read', () => {
    const last = new Map([
      ['a', 5],
      ['b', 6],
    ]);
    expect(pickRolling(['a', 'b', 'new'], last, { runsPerPeriod: 3 })).toEqual(['new']);
    expect(pickRolling(['a', 'b'], last, { runsPerPeriod: 2 })).toEqual(['a']);
  });

  it('--read-data values: all, a percentage, or a clear reason', () => {
    expect(parseReadData(undefined)).toEqual({ kind: 'none' });
    expect(parseReadData(true)).toEqual({ kind: 'all' });
    expect(parseReadData('100%')).toEqual({ kind: 'all' });
    expect(parseReadData('12.5%')).toEqual({ kind: 'share', share: 0.125 });
    expect(parseReadData('0%')).toMatchObject({ kind: 'invalid', why: expect.stringMatching(/between/) });
    expect(parseReadData('abc')).toMatchObject({ kind: 'invalid', why: expect.stringMatching(/percentage/) });
  });
});
