/**
 * Snapshot ids: `snap-<host>-YYYY-MM-DDTHH-MM-SSZ[-N][-manual]`, always UTC; ids written before
 * hosts existed have no `<host>-` (`snap-YYYY-…`) and belong to the machine reading them.
 * The id is the only clock retention trusts (file times change on copy/restore),
 * so parsing is strict: one canonical spelling per (host, time, seq, manual). The host keeps two
 * machines sharing one remote from ever writing the same id, even in the same second.
 */

import { byCodeUnit } from '../core/text-order.js';
import { HOST_NAME_PATTERN } from '../root/host.js';

export interface ParsedSnapshotId {
  id: string;
  /** UTC instant encoded in the id, whole seconds */
  time: Date;
  /** 0 for the first snapshot of a second, N for the `-N` suffix */
  seq: number;
  manual: boolean;
  /** the machine that took it (root/host.ts); undefined for an id written before hosts existed */
  host?: string;
}

/**
 * Shape only; `parseSnapshotId` also rejects impossible dates.
 * `seq` has no leading zero and is never 0, because `-0`/`-01` would be a second
 * spelling of an id that `formatSnapshotId` writes differently. A host (HOST_NAME_PATTERN) holds
 * no upper-case letter, so the `T` and `Z` of the timestamp are found in one place only: an id
 * parses one way, with or without a host.
 */
export const SNAPSHOT_ID_PATTERN =
  /^snap-(?:(?<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)-)?(?<year>\d{4})-(?<month>\d{2})-(?<day>\d{2})T(?<hour>\d{2})-(?<minute>\d{2})-(?<second>\d{2})Z(?:-(?<seq>[1-9]\d*))?(?<manual>-manual)?$/;

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
  return { id, time, seq, manual: groups.manual !== undefined, ...(groups.host !== undefined ? { host: groups.host } : {}) };
}

/**
 * The id for a snapshot taken at `time` on `host` (no host: the id form written before hosts
 * existed, kept for tests and tools); sub-second precision is dropped, not rounded.
 * @throws RangeError for an invalid date, a year outside 0000-9999, a bad seq or host
 */
export function formatSnapshotId(time: Date, opts: { manual: boolean; seq?: number; host?: string }): string {
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
  if (opts.host !== undefined && !HOST_NAME_PATTERN.test(opts.host)) throw new RangeError(`formatSnapshotId: host ${JSON.stringify(opts.host)} is not a host name (lowercase letters, digits and "-", at most 63)`);
  const host = opts.host !== undefined ? `${opts.host}-` : '';
  return `snap-${host}${stamp}${seq > 0 ? `-${seq}` : ''}${opts.manual ? '-manual' : ''}`;
}

/**
 * The machine snapshot `id` belongs to: the host it carries, else (an id written before hosts
 * existed) `thisHost`, the machine reading it. null when `id` is not a snapshot id.
 */
export function snapshotHost(id: string, thisHost: string): string | null {
  const parsed = parseSnapshotId(id);
  return parsed ? (parsed.host ?? thisHost) : null;
}

/**
 * Oldest first: by time, then seq (whatever the hosts). Ties (an automatic and a manual snapshot of the
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
