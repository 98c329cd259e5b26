import { describe, expect, it } from 'vitest';
import { SNAPSHOT_ID_PATTERN, compareSnapshotIds, formatSnapshotId, parseSnapshotId } from '../src/snapshot/id.js';

describe('SNAPSHOT_ID_PATTERN', () => {
  it.each([
    'snap-2026-11-22T13-00-00Z',
    'snap-2026-11-22T13-00-00Z-2',
    'snap-2026-11-22T13-05-12Z-manual',
    'snap-2026-11-22T13-05-12Z-3-manual',
    'snap-2026-11-22T13-05-12Z-1',
    'snap-2026-11-22T13-05-12Z-10',
  ])('matches %s', (id) => {
    expect(SNAPSHOT_ID_PATTERN.test(id)).toBe(true);
  });

  it.each([
    ['lower-case t/z', 'snap-2026-11-22t13-00-00z'],
    ['no Z', 'snap-2026-11-22T13-00-00'],
    ['colons', 'snap-2026-11-22T13:00:00Z'],
    ['milliseconds', 'snap-2026-11-22T13-00-00.000Z'],
    ['seq 0 (written without a suffix)', 'snap-2026-11-22T13-00-00Z-0'],
    ['seq with a leading zero', 'snap-2026-11-22T13-00-00Z-02'],
    ['manual before seq', 'snap-2026-11-22T13-00-00Z-manual-2'],
    ['upper-case manual', 'snap-2026-11-22T13-00-00Z-MANUAL'],
    ['trailing text', 'snap-2026-11-22T13-00-00Z.tar.zst'],
    ['leading text', 'old-snap-2026-11-22T13-00-00Z'],
    ['short year', 'snap-226-11-22T13-00-00Z'],
    ['empty', ''],
  ])('rejects %s', (_why, id) => {
    expect(SNAPSHOT_ID_PATTERN.test(id)).toBe(false);
    expect(parseSnapshotId(id)).toBeNull();
  });
});

describe('parseSnapshotId', () => {
  it('reads time, seq and manual from each documented form', () => {
    expect(parseSnapshotId('snap-2026-11-22T13-00-00Z')).toEqual({
      id: 'snap-2026-11-22T13-00-00Z',
      time: new Date('2026-11-22T13:00:00.000Z'),
      seq: 0,
      manual: false,
    });
    expect(parseSnapshotId('snap-2026-11-22T13-00-00Z-2')).toEqual({
      id: 'snap-2026-11-22T13-00-00Z-2',
      time: new Date('2026-11-22T13:00:00.000Z'),
      seq: 2,
      manual: false,
    });
    expect(parseSnapshotId('snap-2026-11-22T13-05-12Z-manual')).toEqual({
      id: 'snap-2026-11-22T13-05-12Z-manual',
      time: new Date('2026-11-22T13:05:12.000Z'),
      seq: 0,
      manual: true,
    });
    expect(parseSnapshotId('snap-2026-11-22T13-05-12Z-3-manual')).toEqual({
      id: 'snap-2026-11-22T13-05-12Z-3-manual',
      time: new Date('2026-11-22T13:05:12.000Z'),
      seq: 3,
      manual: true,
    });
  });

  it('accepts real edge dates', () => {
    expect(parseSnapshotId('snap-2028-02-29T23-59-59Z')?.time.toISOString()).toBe('2028-02-29T23:59:59.000Z');
    expect(parseSnapshotId('snap-2000-02-29T00-00-00Z')?.time.toISOString()).toBe('2000-02-29T00:00:00.000Z');
    expect(parseSnapshotId('snap-2026-12-31T23-59-59Z')?.time.toISOString()).toBe('2026-12-31T23:59:59.000Z');
    // years below 100 must not be shifted into the 1900s
    expect(parseSnapshotId('snap-0042-01-01T00-00-00Z')?.time.getUTCFullYear()).toBe(42);
  });

  it.each([
    ['month 13', 'snap-2026-13-01T00-00-00Z'],
    ['month 00', 'snap-2026-00-10T00-00-00Z'],
    ['day 00', 'snap-2026-01-00T00-00-00Z'],
    ['Feb 30', 'snap-2028-02-30T00-00-00Z'],
    ['Feb 29 of a common year', 'snap-2027-02-29T00-00-00Z'],
    ['Feb 29 of 2100 (century, not leap)', 'snap-2100-02-29T00-00-00Z'],
    ['Apr 31', 'snap-2026-04-31T00-00-00Z'],
    ['hour 24', 'snap-2026-11-22T24-00-00Z'],
    ['minute 60', 'snap-2026-11-22T13-60-00Z'],
    ['leap second 60', 'snap-2026-12-31T23-59-60Z'],
    ['seq beyond safe integers', 'snap-2026-11-22T13-00-00Z-99999999999999999999'],
  ])('returns null for %s', (_why, id) => {
    expect(parseSnapshotId(id)).toBeNull();
  });
});

describe('formatSnapshotId', () => {
  const t = new Date('2026-11-22T13:05:12.000Z');

  it('writes each documented form', () => {
    expect(formatSnapshotId(t, { manual: false })).toBe('snap-2026-11-22T13-05-12Z');
    expect(formatSnapshotId(t, { manual: false, seq: 0 })).toBe('snap-2026-11-22T13-05-12Z');
    expect(formatSnapshotId(t, { manual: false, seq: 2 })).toBe('snap-2026-11-22T13-05-12Z-2');
    expect(formatSnapshotId(t, { manual: true })).toBe('snap-2026-11-22T13-05-12Z-manual');
    expect(formatSnapshotId(t, { manual: true, seq: 3 })).toBe('snap-2026-11-22T13-05-12Z-3-manual');
  });

  it('uses UTC and truncates (never rounds) milliseconds', () => {
    // 23:59:59.999 rounded would become the next day, month and year
    expect(formatSnapshotId(new Date('2026-12-31T23:59:59.999Z'), { manual: false })).toBe('snap-2026-12-31T23-59-59Z');
    // an instant written with an offset is still formatted in UTC
    expect(formatSnapshotId(new Date('2027-01-01T01:30:00+02:00'), { manual: false })).toBe('snap-2026-12-31T23-30-00Z');
    expect(formatSnapshotId(new Date('0042-03-04T05:06:07Z'), { manual: false })).toBe('snap-0042-03-04T05-06-07Z');
  });

  it('round-trips through parseSnapshotId', () => {
    for (const opts of [{ manual: false }, { manual: true, seq: 7 }, { manual: false, seq: 12 }]) {
      const id = formatSnapshotId(t, opts);
      expect(parseSnapshotId(id)).toEqual({ id, time: t, seq: opts.seq ?? 0, manual: opts.manual });
    }
  });

  it('refuses what it could not write as a parseable id', () => {
    expect(() => formatSnapshotId(new Date(Number.NaN), { manual: false })).toThrow(RangeError);
    expect(() => formatSnapshotId(new Date('+010000-01-01T00:00:00Z'), { manual: false })).toThrow(RangeError);
    expect(() => formatSnapshotId(t, { manual: false, seq: -1 })).toThrow(RangeError);
    expect(() => formatSnapshotId(t, { manual: false, seq: 1.5 })).toThrow(RangeError);
  });
});

describe('compareSnapshotIds', () => {
  it('orders by time, then numerically by seq, oldest first', () => {
    const sorted = [
      'snap-2026-11-22T13-00-00Z-10',
      'snap-2026-11-22T13-00-01Z',
      'snap-2026-11-22T13-00-00Z-9',
      'snap-2025-12-31T23-59-59Z-manual',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T13-00-00Z-2-manual',
    ].sort(compareSnapshotIds);
    expect(sorted).toEqual([
      'snap-2025-12-31T23-59-59Z-manual',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T13-00-00Z-2-manual',
      'snap-2026-11-22T13-00-00Z-9',
      'snap-2026-11-22T13-00-00Z-10',
      'snap-2026-11-22T13-00-01Z',
    ]);
  });

  it('gives a total, deterministic order for ties and unparseable ids', () => {
    expect(compareSnapshotIds('snap-2026-11-22T13-00-00Z', 'snap-2026-11-22T13-00-00Z')).toBe(0);
    // same second and seq: automatic before manual, by string order
    expect(compareSnapshotIds('snap-2026-11-22T13-00-00Z', 'snap-2026-11-22T13-00-00Z-manual')).toBeLessThan(0);
    // unparseable ids count as older than any valid id
    expect(compareSnapshotIds('zzz', 'snap-1970-01-01T00-00-00Z')).toBeLessThan(0);
    expect(compareSnapshotIds('snap-1970-01-01T00-00-00Z', 'aaa')).toBeGreaterThan(0);
    expect(compareSnapshotIds('b', 'a')).toBeGreaterThan(0);
  });
});
