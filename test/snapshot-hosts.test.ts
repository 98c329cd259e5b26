import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { SNAPSHOT_ID_PATTERN, compareSnapshotIds, formatSnapshotId, parseSnapshotId, snapshotHost } from '../src/snapshot/id.js';
import { decideRetention, decideRetentionByHost, idsByHost, type RetentionPolicy } from '../src/snapshot/retention.js';
import { HOST_NAME_PATTERN, configuredHost, defaultHostName, isThisMachine, safeHostName } from '../src/root/host.js';
import { parseConfigFile } from '../src/root/config.js';
import { WbError } from '../src/core/errors.js';

const t = new Date('2026-11-22T13:05:12.000Z');

describe('snapshot ids with a host', () => {
  it.each([
    ['snap-laptop-2026-11-22T13-05-12Z', 'laptop', 0, false],
    ['snap-laptop-2026-11-22T13-05-12Z-2', 'laptop', 2, false],
    ['snap-work-desktop-2026-11-22T13-05-12Z-manual', 'work-desktop', 0, true],
    ['snap-a-2026-11-22T13-05-12Z-3-manual', 'a', 3, true],
    // hosts made of digits and hyphens still parse one way: the timestamp holds the only 'T'
    ['snap-2026-2026-11-22T13-05-12Z', '2026', 0, false],
    ['snap-10-0-0-7-2026-11-22T13-05-12Z-1', '10-0-0-7', 1, false],
    [`snap-${'h'.repeat(63)}-2026-11-22T13-05-12Z`, 'h'.repeat(63), 0, false],
  ])('parses %s', (id, host, seq, manual) => {
    expect(SNAPSHOT_ID_PATTERN.test(id)).toBe(true);
    expect(parseSnapshotId(id)).toEqual({ id, time: t, seq, manual, host });
  });

  it('an id without a host (written before hosts) parses as before, with no host', () => {
    const parsed = parseSnapshotId('snap-2026-11-22T13-05-12Z-3-manual');
    expect(parsed).toEqual({ id: 'snap-2026-11-22T13-05-12Z-3-manual', time: t, seq: 3, manual: true });
    expect(parsed && 'host' in parsed).toBe(false);
  });

  it.each([
    ['an upper-case host', 'snap-Laptop-2026-11-22T13-05-12Z'],
    ['a host starting with "-"', 'snap--laptop-2026-11-22T13-05-12Z'],
    ['a host ending with "-"', 'snap-laptop--2026-11-22T13-05-12Z'],
    ['a host of 64 characters', `snap-${'h'.repeat(64)}-2026-11-22T13-05-12Z`],
    ['a dot', 'snap-mac.local-2026-11-22T13-05-12Z'],
    ['an underscore', 'snap-my_box-2026-11-22T13-05-12Z'],
    ['an @', 'snap-me@box-2026-11-22T13-05-12Z'],
    ['a colon', 'snap-box:1-2026-11-22T13-05-12Z'],
    ['a space', 'snap-my box-2026-11-22T13-05-12Z'],
    ['a host after the time', 'snap-2026-11-22T13-05-12Z-laptop'],
    ['an empty host', 'snap--2026-11-22T13-05-12Z'],
  ])('rejects %s', (_why, id) => {
    expect(SNAPSHOT_ID_PATTERN.test(id)).toBe(false);
    expect(parseSnapshotId(id)).toBeNull();
  });

  it('formats with a host and round-trips; without one, the old form', () => {
    expect(formatSnapshotId(t, { manual: false, host: 'laptop' })).toBe('snap-laptop-2026-11-22T13-05-12Z');
    expect(formatSnapshotId(t, { manual: true, seq: 2, host: 'work-desktop' })).toBe('snap-work-desktop-2026-11-22T13-05-12Z-2-manual');
    expect(formatSnapshotId(t, { manual: false })).toBe('snap-2026-11-22T13-05-12Z');
    for (const opts of [{ manual: false, host: 'x' }, { manual: true, seq: 7, host: '2026' }, { manual: false, seq: 12, host: 'a-b-c' }]) {
      const id = formatSnapshotId(t, opts);
      expect(parseSnapshotId(id)).toEqual({ id, time: t, seq: opts.seq ?? 0, manual: opts.manual, host: opts.host });
    }
  });

  it('refuses a host it could not write as a parseable id', () => {
    for (const host of ['', 'Laptop', '-a', 'a-', 'mac.local', 'h'.repeat(64), 'a b', 'a@{b']) {
      expect(() => formatSnapshotId(t, { manual: false, host })).toThrow(RangeError);
    }
  });

  it('every id form is a valid git tag name (release tags are git refs), checked by git itself', () => {
    const ids = [
      formatSnapshotId(t, { manual: true, seq: 3, host: 'h'.repeat(63) }),
      formatSnapshotId(t, { manual: false, host: safeHostName('Johns-MacBook-Pro.local') }),
      formatSnapshotId(t, { manual: false, host: safeHostName('lock') }),
      formatSnapshotId(t, { manual: false }),
    ];
    for (const id of ids) expect(() => execFileSync('git', ['check-ref-format', `refs/tags/${id}`])).not.toThrow();
  });

  it('two hosts in the same second never share an id, and ids of one second sort the same way every time', () => {
    const a = formatSnapshotId(t, { manual: false, host: 'laptop' });
    const b = formatSnapshotId(t, { manual: false, host: 'desktop' });
    expect(a).not.toBe(b);
    expect([a, b].sort(compareSnapshotIds)).toEqual([b, a].sort(compareSnapshotIds));
    // time still orders first, whatever the host
    const later = formatSnapshotId(new Date(t.getTime() + 1000), { manual: false, host: 'aaa' });
    expect([later, a, b].sort(compareSnapshotIds).at(-1)).toBe(later);
  });

  it('snapshotHost: the host in the id, else the machine reading it; null for what is no id', () => {
    expect(snapshotHost('snap-laptop-2026-11-22T13-05-12Z', 'desktop')).toBe('laptop');
    expect(snapshotHost('snap-2026-11-22T13-05-12Z', 'desktop')).toBe('desktop');
    expect(snapshotHost('notes.txt', 'desktop')).toBeNull();
  });
});

describe('host names', () => {
  it.each([
    ['Johns-MacBook-Pro.local', 'johns-macbook-pro-local'],
    ['vm', 'vm'],
    ['WORK_DESKTOP', 'work-desktop'],
    ['--edge--', 'edge'],
    ['émile’s pc', 'mile-s-pc'],
    ['***', 'host'],
    ['a'.repeat(62) + '-b' + 'c'.repeat(10), 'a'.repeat(62)],
  ])('safeHostName(%j) is %j, a valid host', (raw, safe) => {
    expect(safeHostName(raw)).toBe(safe);
    expect(HOST_NAME_PATTERN.test(safeHostName(raw))).toBe(true);
  });

  it("the default is this machine's hostname made safe; the config's `host` wins", () => {
    expect(defaultHostName()).toBe(safeHostName(os.hostname()));
    expect(configuredHost({})).toBe(defaultHostName());
    expect(configuredHost({ host: 'laptop' })).toBe('laptop');
  });

  it('a manifest written before hosts (raw hostname) is this machine’s; another name is not', () => {
    expect(isThisMachine(os.hostname(), 'laptop')).toBe(true);
    expect(isThisMachine('laptop', 'laptop')).toBe(true);
    expect(isThisMachine('Laptop.local', 'laptop-local')).toBe(true);
    expect(isThisMachine('desktop', 'laptop')).toBe(os.hostname() === 'desktop');
  });

  it('wb-backup.yaml takes a valid host and refuses one that could not go into ids, saying what is expected', () => {
    expect(parseConfigFile({ host: 'work-desktop' }, 'test').host).toBe('work-desktop');
    expect(parseConfigFile({}, 'test').host).toBeUndefined();
    for (const host of ['Work', 'a.b', '', 'x'.repeat(64), 'a_b']) {
      const err = (() => {
        try {
          parseConfigFile({ host }, 'test');
        } catch (e) {
          return e;
        }
      })() as WbError;
      expect(err).toBeInstanceOf(WbError);
      expect(err.code).toBe('config_invalid');
      expect(err.message).toMatch(/host: expected lowercase letters, digits and "-"/);
    }
  });
});

describe('retention by host', () => {
  const policy: RetentionPolicy = { hourly: 3, daily: 2, weekly: 1, monthly: 0, annual: 0, manual: 1 };
  const hours = (host: string | undefined, n: number, offsetMs = 0) =>
    Array.from({ length: n }, (_, i) => formatSnapshotId(new Date(Date.UTC(2026, 10, 1) + i * 3_600_000 * 5 + offsetMs), { manual: i % 7 === 3, ...(host ? { host } : {}) }));

  it("each machine keeps exactly what the policy keeps of its own ids; ids without a host are this machine's", () => {
    const laptop = hours('laptop', 40);
    const legacy = hours(undefined, 10, -86_400_000 * 3);
    const desktop = hours('desktop', 40, 1000); // one second later: interleaved with the laptop's
    const all = [...laptop, ...legacy, ...desktop, 'README.md'];
    const decision = decideRetentionByHost(all, policy, 'laptop');
    const own = new Set(decideRetention([...laptop, ...legacy], policy).keep);
    const theirs = new Set(decideRetention(desktop, policy).keep);
    expect(new Set(decision.keep)).toEqual(new Set([...own, ...theirs, 'README.md']));
    expect(decision.reasons['README.md']).toEqual(['unrecognized']);
    expect(decision.prune.every((id) => !own.has(id) && !theirs.has(id))).toBe(true);
    // what one policy over everything would do instead: the hosts crowd each other out
    expect(new Set(decideRetention(all, policy).keep)).not.toEqual(new Set(decision.keep));
    expect([...idsByHost(all, 'laptop').keys()].sort()).toEqual(['desktop', 'laptop']);
    expect(idsByHost(all, 'laptop').get('laptop')).toEqual([...laptop, ...legacy]);
  });

  it('stays pure and refuses a bad policy, as decideRetention does', () => {
    expect(() => decideRetentionByHost([], { ...policy, hourly: -1 }, 'laptop')).toThrow(RangeError);
    const ids = hours('a', 12);
    expect(decideRetentionByHost(ids, policy, 'b')).toEqual(decideRetention(ids, policy));
  });
});
