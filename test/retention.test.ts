import { afterEach, describe, expect, it, vi } from 'vitest';
import { RetentionPolicySchema, decideRetention, isoWeek, periodKey, type RetentionPolicy } from '../src/snapshot/retention.js';
import { compareSnapshotIds, formatSnapshotId } from '../src/snapshot/id.js';

/** Every cap 0 unless given, so each case exercises only the tiers it names. */
function only(caps: Partial<RetentionPolicy>): RetentionPolicy {
  return { hourly: 0, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 0, ...caps };
}

/** reasons for a case where a single tier keeps everything */
function allBy(tier: string, ids: string[]): Record<string, string[]> {
  return Object.fromEntries(ids.map((id) => [id, [tier]]));
}

interface GoldenCase {
  name: string;
  policy: RetentionPolicy;
  /** deliberately not in order: the function must sort */
  ids: string[];
  keep: string[];
  prune: string[];
  reasons: Record<string, string[]>;
}

const MANUAL_21 = [
  'snap-2026-11-05T12-00-00Z-manual',
  'snap-2026-11-01T12-00-00Z-manual', // the oldest: the one pruned
  'snap-2026-11-21T12-00-00Z-manual',
  'snap-2026-11-02T12-00-00Z-manual',
  'snap-2026-11-03T12-00-00Z-manual',
  'snap-2026-11-04T12-00-00Z-manual',
  'snap-2026-11-06T12-00-00Z-manual',
  'snap-2026-11-07T12-00-00Z-manual',
  'snap-2026-11-08T12-00-00Z-manual',
  'snap-2026-11-09T12-00-00Z-manual',
  'snap-2026-11-10T12-00-00Z-manual',
  'snap-2026-11-11T12-00-00Z-manual',
  'snap-2026-11-12T12-00-00Z-manual',
  'snap-2026-11-13T12-00-00Z-manual',
  'snap-2026-11-14T12-00-00Z-manual',
  'snap-2026-11-15T12-00-00Z-manual',
  'snap-2026-11-16T12-00-00Z-manual',
  'snap-2026-11-17T12-00-00Z-manual',
  'snap-2026-11-18T12-00-00Z-manual',
  'snap-2026-11-19T12-00-00Z-manual',
  'snap-2026-11-20T12-00-00Z-manual',
];
const MANUAL_20_KEPT = [
  'snap-2026-11-21T12-00-00Z-manual',
  'snap-2026-11-20T12-00-00Z-manual',
  'snap-2026-11-19T12-00-00Z-manual',
  'snap-2026-11-18T12-00-00Z-manual',
  'snap-2026-11-17T12-00-00Z-manual',
  'snap-2026-11-16T12-00-00Z-manual',
  'snap-2026-11-15T12-00-00Z-manual',
  'snap-2026-11-14T12-00-00Z-manual',
  'snap-2026-11-13T12-00-00Z-manual',
  'snap-2026-11-12T12-00-00Z-manual',
  'snap-2026-11-11T12-00-00Z-manual',
  'snap-2026-11-10T12-00-00Z-manual',
  'snap-2026-11-09T12-00-00Z-manual',
  'snap-2026-11-08T12-00-00Z-manual',
  'snap-2026-11-07T12-00-00Z-manual',
  'snap-2026-11-06T12-00-00Z-manual',
  'snap-2026-11-05T12-00-00Z-manual',
  'snap-2026-11-04T12-00-00Z-manual',
  'snap-2026-11-03T12-00-00Z-manual',
  'snap-2026-11-02T12-00-00Z-manual',
];

const GOLDEN: GoldenCase[] = [
  {
    name: 'hourly: the newest of each hour, across midnight',
    policy: only({ hourly: 3 }),
    ids: [
      'snap-2026-11-21T22-50-00Z',
      'snap-2026-11-22T00-05-00Z',
      'snap-2026-11-21T21-00-00Z',
      'snap-2026-11-21T23-30-00Z',
      'snap-2026-11-22T00-45-00Z',
      'snap-2026-11-21T22-10-00Z',
    ],
    keep: ['snap-2026-11-22T00-45-00Z', 'snap-2026-11-21T23-30-00Z', 'snap-2026-11-21T22-50-00Z'],
    prune: ['snap-2026-11-22T00-05-00Z', 'snap-2026-11-21T22-10-00Z', 'snap-2026-11-21T21-00-00Z'],
    reasons: allBy('hourly', ['snap-2026-11-22T00-45-00Z', 'snap-2026-11-21T23-30-00Z', 'snap-2026-11-21T22-50-00Z']),
  },
  {
    name: 'hourly: hours without snapshots do not use up a slot',
    policy: only({ hourly: 3 }),
    ids: [
      'snap-2026-11-22T09-00-00Z',
      'snap-2026-11-22T14-00-00Z',
      'snap-2026-11-22T15-00-00Z',
      'snap-2026-11-22T10-00-00Z',
      'snap-2026-11-22T14-30-00Z',
    ],
    // 11:00-13:59 are empty, so the third slot reaches back to 10:00
    keep: ['snap-2026-11-22T15-00-00Z', 'snap-2026-11-22T14-30-00Z', 'snap-2026-11-22T10-00-00Z'],
    prune: ['snap-2026-11-22T14-00-00Z', 'snap-2026-11-22T09-00-00Z'],
    reasons: allBy('hourly', ['snap-2026-11-22T15-00-00Z', 'snap-2026-11-22T14-30-00Z', 'snap-2026-11-22T10-00-00Z']),
  },
  {
    name: 'daily: several snapshots a day, the newest of each day is kept',
    policy: only({ daily: 2 }),
    ids: [
      'snap-2026-11-21T00-00-00Z',
      'snap-2026-11-22T20-00-00Z',
      'snap-2026-11-20T12-00-00Z',
      'snap-2026-11-21T23-59-59Z',
      'snap-2026-11-22T08-00-00Z',
    ],
    keep: ['snap-2026-11-22T20-00-00Z', 'snap-2026-11-21T23-59-59Z'],
    prune: ['snap-2026-11-22T08-00-00Z', 'snap-2026-11-21T00-00-00Z', 'snap-2026-11-20T12-00-00Z'],
    reasons: allBy('daily', ['snap-2026-11-22T20-00-00Z', 'snap-2026-11-21T23-59-59Z']),
  },
  {
    name: 'daily: a gap of ten empty days, the 7 newest days with snapshots reach back past it',
    policy: only({ daily: 7 }),
    ids: [
      'snap-2026-11-05T12-00-00Z',
      'snap-2026-11-22T06-00-00Z',
      'snap-2026-11-09T12-00-00Z',
      'snap-2026-11-20T12-00-00Z',
      'snap-2026-11-06T12-00-00Z',
      'snap-2026-11-22T18-00-00Z',
      'snap-2026-11-07T12-00-00Z',
      'snap-2026-11-21T12-00-00Z',
      'snap-2026-11-08T12-00-00Z',
    ],
    keep: [
      'snap-2026-11-22T18-00-00Z',
      'snap-2026-11-21T12-00-00Z',
      'snap-2026-11-20T12-00-00Z',
      // Nov 10-19 have nothing
      'snap-2026-11-09T12-00-00Z',
      'snap-2026-11-08T12-00-00Z',
      'snap-2026-11-07T12-00-00Z',
      'snap-2026-11-06T12-00-00Z',
    ],
    prune: ['snap-2026-11-22T06-00-00Z', 'snap-2026-11-05T12-00-00Z'],
    reasons: allBy('daily', [
      'snap-2026-11-22T18-00-00Z',
      'snap-2026-11-21T12-00-00Z',
      'snap-2026-11-20T12-00-00Z',
      'snap-2026-11-09T12-00-00Z',
      'snap-2026-11-08T12-00-00Z',
      'snap-2026-11-07T12-00-00Z',
      'snap-2026-11-06T12-00-00Z',
    ]),
  },
  {
    name: 'weekly: 2020-W53 spans Dec 28 2020 .. Jan 3 2021, then 2021-W01',
    policy: only({ weekly: 3 }),
    ids: [
      'snap-2021-01-01T12-00-00Z', // Fri, 2020-W53
      'snap-2020-12-27T12-00-00Z', // Sun, 2020-W52
      'snap-2021-01-05T12-00-00Z', // Tue, 2021-W01
      'snap-2020-12-28T00-00-00Z', // Mon, 2020-W53
      'snap-2021-01-03T23-59-59Z', // Sun, 2020-W53, its newest
      'snap-2020-12-31T12-00-00Z', // Thu, 2020-W53
      'snap-2021-01-04T00-00-00Z', // Mon, 2021-W01
    ],
    keep: ['snap-2021-01-05T12-00-00Z', 'snap-2021-01-03T23-59-59Z', 'snap-2020-12-27T12-00-00Z'],
    prune: [
      'snap-2021-01-04T00-00-00Z',
      'snap-2021-01-01T12-00-00Z',
      'snap-2020-12-31T12-00-00Z',
      'snap-2020-12-28T00-00-00Z',
    ],
    reasons: allBy('weekly', ['snap-2021-01-05T12-00-00Z', 'snap-2021-01-03T23-59-59Z', 'snap-2020-12-27T12-00-00Z']),
  },
  {
    name: 'weekly: 2026-W53 spans Dec 28 2026 .. Jan 3 2027, then 2027-W01',
    policy: only({ weekly: 3 }),
    ids: [
      'snap-2026-12-31T10-00-00Z', // Thu, 2026-W53
      'snap-2027-01-04T00-30-00Z', // Mon, 2027-W01
      'snap-2026-12-27T12-00-00Z', // Sun, 2026-W52
      'snap-2027-01-03T23-00-00Z', // Sun, 2026-W53, its newest
      'snap-2026-12-28T00-00-00Z', // Mon, 2026-W53
      'snap-2027-01-01T10-00-00Z', // Fri, 2026-W53
    ],
    keep: ['snap-2027-01-04T00-30-00Z', 'snap-2027-01-03T23-00-00Z', 'snap-2026-12-27T12-00-00Z'],
    prune: ['snap-2027-01-01T10-00-00Z', 'snap-2026-12-31T10-00-00Z', 'snap-2026-12-28T00-00-00Z'],
    reasons: allBy('weekly', ['snap-2027-01-04T00-30-00Z', 'snap-2027-01-03T23-00-00Z', 'snap-2026-12-27T12-00-00Z']),
  },
  {
    name: 'monthly: Jan 31 and Feb 1 are different months',
    policy: only({ monthly: 2 }),
    ids: [
      'snap-2028-02-01T00-00-00Z',
      'snap-2028-01-30T12-00-00Z',
      'snap-2028-02-01T06-00-00Z',
      'snap-2028-01-31T23-59-59Z',
    ],
    keep: ['snap-2028-02-01T06-00-00Z', 'snap-2028-01-31T23-59-59Z'],
    prune: ['snap-2028-02-01T00-00-00Z', 'snap-2028-01-30T12-00-00Z'],
    reasons: allBy('monthly', ['snap-2028-02-01T06-00-00Z', 'snap-2028-01-31T23-59-59Z']),
  },
  {
    name: 'daily + monthly: Feb 28, Feb 29 and Mar 1 of leap year 2028',
    policy: only({ daily: 3, monthly: 2 }),
    ids: [
      'snap-2028-02-29T10-00-00Z',
      'snap-2028-03-01T00-00-00Z',
      'snap-2028-01-31T12-00-00Z',
      'snap-2028-02-28T23-00-00Z',
      'snap-2028-03-01T00-00-01Z',
      'snap-2028-02-29T23-59-59Z',
    ],
    keep: ['snap-2028-03-01T00-00-01Z', 'snap-2028-02-29T23-59-59Z', 'snap-2028-02-28T23-00-00Z'],
    prune: ['snap-2028-03-01T00-00-00Z', 'snap-2028-02-29T10-00-00Z', 'snap-2028-01-31T12-00-00Z'],
    reasons: {
      'snap-2028-03-01T00-00-01Z': ['daily', 'monthly'],
      'snap-2028-02-29T23-59-59Z': ['daily', 'monthly'],
      'snap-2028-02-28T23-00-00Z': ['daily'],
    },
  },
  {
    name: 'monthly + annual: across the 2026/2027 year end',
    policy: only({ monthly: 2, annual: 2 }),
    ids: [
      'snap-2026-11-30T12-00-00Z',
      'snap-2025-06-01T00-00-00Z',
      'snap-2027-01-01T00-00-00Z',
      'snap-2025-12-31T23-59-59Z',
      'snap-2026-12-31T23-59-59Z',
    ],
    keep: ['snap-2027-01-01T00-00-00Z', 'snap-2026-12-31T23-59-59Z'],
    prune: ['snap-2026-11-30T12-00-00Z', 'snap-2025-12-31T23-59-59Z', 'snap-2025-06-01T00-00-00Z'],
    reasons: {
      'snap-2027-01-01T00-00-00Z': ['monthly', 'annual'],
      'snap-2026-12-31T23-59-59Z': ['monthly', 'annual'],
    },
  },
  {
    name: 'annual null keeps the newest of every year',
    policy: only({ monthly: 2, annual: null }),
    ids: [
      'snap-2026-11-30T12-00-00Z',
      'snap-2025-06-01T00-00-00Z',
      'snap-2027-01-01T00-00-00Z',
      'snap-2025-12-31T23-59-59Z',
      'snap-2026-12-31T23-59-59Z',
      'snap-1999-07-01T00-00-00Z',
    ],
    keep: [
      'snap-2027-01-01T00-00-00Z',
      'snap-2026-12-31T23-59-59Z',
      'snap-2025-12-31T23-59-59Z',
      'snap-1999-07-01T00-00-00Z',
    ],
    prune: ['snap-2026-11-30T12-00-00Z', 'snap-2025-06-01T00-00-00Z'],
    reasons: {
      'snap-2027-01-01T00-00-00Z': ['monthly', 'annual'],
      'snap-2026-12-31T23-59-59Z': ['monthly', 'annual'],
      'snap-2025-12-31T23-59-59Z': ['annual'],
      'snap-1999-07-01T00-00-00Z': ['annual'],
    },
  },
  {
    name: 'a snapshot kept by several tiers lists every one of them',
    policy: only({ hourly: 2, daily: 3, weekly: 2, monthly: 2, annual: 1 }),
    ids: [
      'snap-2026-11-15T09-00-00Z',
      'snap-2026-11-22T12-00-00Z',
      'snap-2025-12-31T00-00-00Z',
      'snap-2026-11-21T23-00-00Z',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-10-31T08-00-00Z',
      'snap-2026-11-15T10-00-00Z',
    ],
    keep: [
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T12-00-00Z',
      'snap-2026-11-21T23-00-00Z',
      'snap-2026-11-15T10-00-00Z',
      'snap-2026-10-31T08-00-00Z',
    ],
    prune: ['snap-2026-11-15T09-00-00Z', 'snap-2025-12-31T00-00-00Z'],
    reasons: {
      'snap-2026-11-22T13-00-00Z': ['hourly', 'daily', 'weekly', 'monthly', 'annual'],
      'snap-2026-11-22T12-00-00Z': ['hourly'],
      'snap-2026-11-21T23-00-00Z': ['daily'], // Sat, same ISO week (2026-W47) as Sun Nov 22
      'snap-2026-11-15T10-00-00Z': ['daily', 'weekly'], // Sun, newest of 2026-W46
      'snap-2026-10-31T08-00-00Z': ['monthly'],
    },
  },
  {
    name: 'seq: in the same second the higher seq is newer (numerically, 10 > 9)',
    policy: only({ hourly: 1 }),
    ids: [
      'snap-2026-11-22T13-00-00Z-2',
      'snap-2026-11-22T12-59-59Z-5',
      'snap-2026-11-22T13-00-00Z-10',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T13-00-00Z-9',
    ],
    keep: ['snap-2026-11-22T13-00-00Z-10'],
    prune: [
      'snap-2026-11-22T13-00-00Z-9',
      'snap-2026-11-22T13-00-00Z-2',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T12-59-59Z-5',
    ],
    reasons: { 'snap-2026-11-22T13-00-00Z-10': ['hourly'] },
  },
  {
    name: 'manual: 21 manual snapshots, the newest 20 are kept',
    policy: only({ manual: 20 }),
    ids: MANUAL_21,
    keep: MANUAL_20_KEPT,
    prune: ['snap-2026-11-01T12-00-00Z-manual'],
    reasons: allBy('manual', MANUAL_20_KEPT),
  },
  {
    name: 'manual: never counted in automatic tiers, and automatic never counted as manual',
    policy: only({ hourly: 1, daily: 1, manual: 1 }),
    ids: [
      'snap-2026-11-22T11-00-00Z-manual',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T13-30-00Z-manual', // newest overall, same hour and day as 13:00
      'snap-2026-11-22T12-00-00Z',
    ],
    keep: ['snap-2026-11-22T13-30-00Z-manual', 'snap-2026-11-22T13-00-00Z'],
    prune: ['snap-2026-11-22T12-00-00Z', 'snap-2026-11-22T11-00-00Z-manual'],
    reasons: {
      'snap-2026-11-22T13-30-00Z-manual': ['manual'],
      'snap-2026-11-22T13-00-00Z': ['hourly', 'daily'],
    },
  },
  {
    name: 'manual: seq orders manual snapshots of the same second',
    policy: only({ manual: 1 }),
    ids: ['snap-2026-11-22T13-05-12Z-3-manual', 'snap-2026-11-22T13-05-12Z-manual'],
    keep: ['snap-2026-11-22T13-05-12Z-3-manual'],
    prune: ['snap-2026-11-22T13-05-12Z-manual'],
    reasons: { 'snap-2026-11-22T13-05-12Z-3-manual': ['manual'] },
  },
  {
    name: 'caps of 0 keep nothing (automatic or manual)',
    policy: only({}),
    ids: [
      'snap-2026-11-22T12-00-00Z',
      'snap-2026-11-22T13-05-12Z-manual',
      'snap-2025-01-01T00-00-00Z',
      'snap-2026-11-22T13-00-00Z',
    ],
    keep: [],
    prune: [
      'snap-2026-11-22T13-05-12Z-manual',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T12-00-00Z',
      'snap-2025-01-01T00-00-00Z',
    ],
    reasons: {},
  },
  {
    name: 'a cap of 0 on one tier leaves the others working',
    policy: only({ hourly: 0, daily: 2, manual: 0 }),
    ids: [
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T12-00-00Z',
      'snap-2026-11-21T12-00-00Z',
      'snap-2026-11-22T14-00-00Z-manual',
    ],
    keep: ['snap-2026-11-22T13-00-00Z', 'snap-2026-11-21T12-00-00Z'],
    prune: ['snap-2026-11-22T14-00-00Z-manual', 'snap-2026-11-22T12-00-00Z'],
    reasons: allBy('daily', ['snap-2026-11-22T13-00-00Z', 'snap-2026-11-21T12-00-00Z']),
  },
  {
    name: 'unrecognized ids are always kept, after every dated id, in reverse string order',
    policy: only({}),
    ids: [
      'notes.txt',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-13-01T00-00-00Z', // month 13
      '__proto__',
      'snap-2026-02-30T00-00-00Z', // Feb 30
      'snap-2026-11-22T13-00-00Z-0', // non-canonical seq
      'snap-2026-11-22T13-00-00Z-manual',
    ],
    keep: [
      'snap-2026-13-01T00-00-00Z',
      'snap-2026-11-22T13-00-00Z-0',
      'snap-2026-02-30T00-00-00Z',
      'notes.txt',
      '__proto__',
    ],
    // same second and seq: the tie breaks by string order, so "-manual" counts as newer
    prune: ['snap-2026-11-22T13-00-00Z-manual', 'snap-2026-11-22T13-00-00Z'],
    reasons: allBy('unrecognized', [
      'snap-2026-13-01T00-00-00Z',
      'snap-2026-11-22T13-00-00Z-0',
      'snap-2026-02-30T00-00-00Z',
      'notes.txt',
      '__proto__',
    ]),
  },
  {
    name: 'duplicates in the input count once',
    policy: only({ hourly: 1 }),
    ids: [
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T12-00-00Z',
      'junk',
      'snap-2026-11-22T13-00-00Z',
      'snap-2026-11-22T12-00-00Z',
      'junk',
    ],
    keep: ['snap-2026-11-22T13-00-00Z', 'junk'],
    prune: ['snap-2026-11-22T12-00-00Z'],
    reasons: { 'snap-2026-11-22T13-00-00Z': ['hourly'], junk: ['unrecognized'] },
  },
  {
    name: 'empty input',
    policy: RetentionPolicySchema.parse({}),
    ids: [],
    keep: [],
    prune: [],
    reasons: {},
  },
];

describe('decideRetention golden cases', () => {
  it.each(GOLDEN)('$name', ({ ids, policy, keep, prune, reasons }) => {
    const decision = decideRetention(ids, policy);
    expect(decision.keep).toEqual(keep);
    expect(decision.prune).toEqual(prune);
    expect(decision.reasons).toEqual(reasons);
    // reasons must be plain own data, even for an id named "__proto__"
    expect(Object.getPrototypeOf(decision.reasons)).toBe(Object.prototype);
    expect(Object.keys(decision.reasons).sort()).toEqual([...keep].sort());
  });

  it('does not modify its input', () => {
    const ids = ['snap-2026-11-22T12-00-00Z', 'snap-2026-11-22T13-00-00Z', 'snap-2026-11-22T12-00-00Z'];
    const copy = [...ids];
    decideRetention(ids, only({ hourly: 1 }));
    expect(ids).toEqual(copy);
  });

  it('is the same decision whatever the current time', () => {
    const ids = ['snap-2026-11-22T13-00-00Z', 'snap-2026-11-21T13-00-00Z', 'snap-2020-01-01T00-00-00Z'];
    const policy = only({ daily: 1, annual: 1 });
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-22T14:00:00Z'));
    const soon = decideRetention(ids, policy);
    vi.setSystemTime(new Date('2040-06-01T00:00:00Z'));
    const muchLater = decideRetention(ids, policy);
    expect(soon.keep).toEqual(['snap-2026-11-22T13-00-00Z']);
    expect(muchLater).toEqual(soon);
  });

  afterEach(() => {
    vi.useRealTimers();
  });
});

describe('decideRetention over 90 days of hourly snapshots', () => {
  // 2026-10-18T00:00Z .. 2027-01-15T23:00Z inclusive: 14 + 30 + 31 + 15 = 90 days, 2160 snapshots.
  const first = Date.parse('2026-10-18T00:00:00Z');
  const ids = Array.from({ length: 90 * 24 }, (_, h) => formatSnapshotId(new Date(first + h * 3_600_000), { manual: false }));
  const policy = RetentionPolicySchema.parse({}); // 24 / 7 / 4 / 12 / null / 20
  const decision = decideRetention(ids, policy);

  const countBy = (tier: string) => Object.values(decision.reasons).filter((r) => r.includes(tier)).length;

  it('keeps the expected number of snapshots per tier', () => {
    expect(ids).toHaveLength(2160);
    expect(countBy('hourly')).toBe(24); // Jan 15 00:00 .. 23:00
    expect(countBy('daily')).toBe(7); // 23:00 of Jan 9 .. Jan 15
    expect(countBy('weekly')).toBe(4); // 2027-W02, 2027-W01, 2026-W53, 2026-W52
    expect(countBy('monthly')).toBe(4); // only Oct, Nov, Dec 2026 and Jan 2027 have snapshots
    expect(countBy('annual')).toBe(2); // 2026 and 2027
    expect(countBy('manual')).toBe(0);
  });

  it('keeps 35 in total, with exactly these beyond the last 24 hours', () => {
    // 24 hourly (all of Jan 15, whose 23:00 is also the newest daily, weekly, monthly and annual)
    // + 6 daily  (23:00 of Jan 14 .. Jan 9)
    // + 2 weekly (Jan 10 23:00 closes 2027-W01 but is already daily; Jan 3 closes 2026-W53, Dec 27 closes 2026-W52)
    // + 3 monthly (Dec 31, Nov 30, Oct 31 at 23:00; Dec 31 is also the annual of 2026)
    // = 35
    expect(decision.keep).toHaveLength(35);
    expect(decision.prune).toHaveLength(2160 - 35);
    expect(decision.keep.slice(0, 24)).toEqual(
      ids.slice(-24).reverse(), // the input is hourly, oldest first
    );
    expect(decision.keep[0]).toBe('snap-2027-01-15T23-00-00Z');
    expect(decision.keep[23]).toBe('snap-2027-01-15T00-00-00Z');
    expect(decision.keep.slice(24)).toEqual([
      'snap-2027-01-14T23-00-00Z',
      'snap-2027-01-13T23-00-00Z',
      'snap-2027-01-12T23-00-00Z',
      'snap-2027-01-11T23-00-00Z',
      'snap-2027-01-10T23-00-00Z',
      'snap-2027-01-09T23-00-00Z',
      'snap-2027-01-03T23-00-00Z',
      'snap-2026-12-31T23-00-00Z',
      'snap-2026-12-27T23-00-00Z',
      'snap-2026-11-30T23-00-00Z',
      'snap-2026-10-31T23-00-00Z',
    ]);
    expect(decision.reasons['snap-2027-01-15T23-00-00Z']).toEqual(['hourly', 'daily', 'weekly', 'monthly', 'annual']);
    expect(decision.reasons['snap-2027-01-10T23-00-00Z']).toEqual(['daily', 'weekly']);
    expect(decision.reasons['snap-2027-01-03T23-00-00Z']).toEqual(['weekly']);
    expect(decision.reasons['snap-2026-12-31T23-00-00Z']).toEqual(['monthly', 'annual']);
    expect(decision.reasons['snap-2026-10-31T23-00-00Z']).toEqual(['monthly']);
  });

  it('is idempotent: applied to its own keep list it keeps everything, for the same reasons', () => {
    const again = decideRetention(decision.keep, policy);
    expect(again.keep).toEqual(decision.keep);
    expect(again.prune).toEqual([]);
    expect(again.reasons).toEqual(decision.reasons);
  });
});

describe('decideRetention invariants on a pseudo-random history', () => {
  /** Fixed-seed LCG: the same "random" input on every run. */
  function lcg(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
  }

  const random = lcg(20261122);
  const start = Date.parse('2025-01-01T00:00:00Z');
  const ids: string[] = [];
  for (let i = 0; i < 400; i++) {
    const time = new Date(start + Math.floor(random() * 730 * 86_400) * 1000);
    const seq = random() < 0.1 ? 1 + Math.floor(random() * 3) : 0;
    ids.push(formatSnapshotId(time, { manual: random() < 0.2, seq }));
  }
  ids.push(ids[3] ?? '', ids[7] ?? '', 'garbage', 'snap-2025-02-29T00-00-00Z');
  const policy = only({ hourly: 5, daily: 6, weekly: 3, monthly: 5, annual: null, manual: 4 });
  const decision = decideRetention(ids, policy);

  it('partitions the distinct input into keep and prune, newest first', () => {
    const distinct = new Set(ids);
    expect(decision.keep.length + decision.prune.length).toBe(distinct.size);
    expect(new Set([...decision.keep, ...decision.prune])).toEqual(distinct);
    expect(decision.keep).toEqual([...decision.keep].sort((a, b) => compareSnapshotIds(b, a)));
    expect(decision.prune).toEqual([...decision.prune].sort((a, b) => compareSnapshotIds(b, a)));
  });

  it('never keeps more per tier than its cap, and gives every kept id a reason', () => {
    const count = (tier: string) => Object.values(decision.reasons).filter((r) => r.includes(tier)).length;
    expect(count('hourly')).toBe(5);
    expect(count('daily')).toBe(6);
    expect(count('weekly')).toBe(3);
    expect(count('monthly')).toBe(5);
    expect(count('annual')).toBe(2); // 2025 and 2026 only
    expect(count('manual')).toBe(4);
    expect(count('unrecognized')).toBe(2);
    for (const id of decision.keep) expect(decision.reasons[id]?.length).toBeGreaterThan(0);
  });

  it('is idempotent', () => {
    expect(decideRetention(decision.keep, policy)).toEqual({ ...decision, prune: [] });
  });
});

describe('isoWeek and periodKey', () => {
  it.each([
    ['2020-12-31T12:00:00Z', 2020, 53],
    ['2021-01-01T00:00:00Z', 2020, 53],
    ['2021-01-03T23:59:59Z', 2020, 53],
    ['2021-01-04T00:00:00Z', 2021, 1],
    ['2026-12-27T23:59:59Z', 2026, 52],
    ['2026-12-28T00:00:00Z', 2026, 53],
    ['2027-01-03T23:59:59Z', 2026, 53],
    ['2027-01-04T00:00:00Z', 2027, 1],
    ['2024-12-30T00:00:00Z', 2025, 1], // a Monday in December that belongs to the next ISO year
    ['2026-11-22T13:00:00Z', 2026, 47],
  ])('%s is %i-W%i', (iso, year, week) => {
    expect(isoWeek(new Date(iso))).toEqual({ year, week });
  });

  it('names each period in UTC', () => {
    const t = new Date('2027-01-01T00:30:00Z');
    expect(periodKey(t, 'hourly')).toBe('2027-01-01T00');
    expect(periodKey(t, 'daily')).toBe('2027-01-01');
    expect(periodKey(t, 'weekly')).toBe('2026-W53');
    expect(periodKey(t, 'monthly')).toBe('2027-01');
    expect(periodKey(t, 'annual')).toBe('2027');
  });
});

describe('RetentionPolicySchema', () => {
  it('defaults every cap', () => {
    expect(RetentionPolicySchema.parse({})).toEqual({ hourly: 24, daily: 7, weekly: 4, monthly: 12, annual: null, manual: 20 });
    expect(RetentionPolicySchema.parse({ annual: 5, hourly: 0 })).toMatchObject({ annual: 5, hourly: 0, daily: 7 });
  });

  it.each([
    ['a negative cap', { daily: -1 }],
    ['a fractional cap', { weekly: 1.5 }],
    ['a string cap', { monthly: '12' }],
    ['null for a cap other than annual', { hourly: null }],
    ['a misspelt key', { hourlly: 24 }],
  ])('rejects %s', (_why, raw) => {
    expect(RetentionPolicySchema.safeParse(raw).success).toBe(false);
  });

  it('decideRetention refuses an invalid policy instead of pruning with it', () => {
    const bad = { ...only({}), daily: -1 };
    expect(() => decideRetention(['snap-2026-11-22T13-00-00Z'], bad)).toThrow(RangeError);
  });
});
