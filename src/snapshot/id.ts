/**
 * Snapshot ids: `snap-YYYY-MM-DDTHH-MM-SSZ[-N][-manual]`, always UTC.
 * The id is the only clock retention trusts (file times change on copy/restore),
 * so parsing is strict: one canonical spelling per (time, seq, manual).
 */

import { byCodeUnit } from '../core/text-order.js';

export interface ParsedSnapshotId {
  id: string;
  /** UTC instant encoded in the id, whole seconds */
  time: Date;
  /** 0 for the first snapshot of a second, N for the `-N` suffix */
  seq: number;
  manual: boolean;
}

/**
 * Shape only; `parseSnapshotId` also rejects impossible dates.
 * `seq` has no leading zero and is never 0, because `-0`/`-01` would be a second
 * spelling of an id that `formatSnapshotId` writes differently.
 */
export const SNAPSHOT_ID_PATTERN =
  /^snap-(?<year>\d{4})-(?<month>\d{2})-(?<day>\d{2})T(?<hour>\d{2})-(?<minute>\d{2})-(?<second>\d{2})Z(?:-(?<seq>[1-9]\d*))?(?<manual>-manual)?$/;

export function parseSnapshotId(id: string): ParsedSnapshotId | null {
  const groups = SNAPSHOT_ID_PATTERN.exec(id)?.groups;
  if (!groups) return null;
  const [year, month, day, hour, minute, second] = [
    groups.year,
    groups.month,
    groups.day,
    groups.hour,
    groups.minute,
    groups.second,
  ].map(Number) as [number, number, number, number, number, number];
  const time = utcDate(year, month, day, hour, minute, second);
  if (!time) return null;
  const seq = groups.seq === undefined ? 0 : Number(groups.seq);
  if (!Number.isSafeInteger(seq)) return null;
  return { id, time, seq, manual: groups.manual !== undefined };
}

/** The id for a snapshot taken at `time`; sub-second precision is dropped, not rounded. */
export function formatSnapshotId(time: Date, opts: { manual: boolean; seq?: number }): string {
  const ms = time.getTime();
  if (Number.isNaN(ms)) throw new RangeError('formatSnapshotId: invalid Date');
  const year = time.getUTCFullYear();
  // The id has exactly four year digits; anything else could not be parsed back.
  if (year < 0 || year > 9999) throw new RangeError(`formatSnapshotId: year ${year} is outside 0000-9999`);
  const seq = opts.seq ?? 0;
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`formatSnapshotId: seq must be a non-negative integer, got ${seq}`);
  const stamp =
    `${pad(year, 4)}-${pad(time.getUTCMonth() + 1)}-${pad(time.getUTCDate())}` +
    `T${pad(time.getUTCHours())}-${pad(time.getUTCMinutes())}-${pad(time.getUTCSeconds())}Z`;
  return `snap-${stamp}${seq > 0 ? `-${seq}` : ''}${opts.manual ? '-manual' : ''}`;
}

/**
 * Oldest first: by time, then seq. Ties (an automatic and a manual snapshot of the
 * same second and seq) and unparseable ids fall back to plain string order so that
 * sorting is total and deterministic; unparseable ids sort before (older than) valid ones.
 */
export function compareSnapshotIds(a: string, b: string): number {
  const pa = parseSnapshotId(a);
  const pb = parseSnapshotId(b);
  if (pa && !pb) return 1;
  if (!pa && pb) return -1;
  if (pa && pb) {
    const byTime = pa.time.getTime() - pb.time.getTime();
    if (byTime !== 0) return byTime;
    if (pa.seq !== pb.seq) return pa.seq - pb.seq;
  }
  return byCodeUnit(a, b);
}

/** A UTC Date, or null when the fields do not name a real instant (Feb 30, hour 24, second 60...). */
function utcDate(year: number, month: number, day: number, hour: number, minute: number, second: number): Date | null {
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  // Date silently rolls overflow into the next field; a round trip exposes it.
  const same =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second;
  return same ? date : null;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}
