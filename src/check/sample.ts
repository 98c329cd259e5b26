/**
 * Which snapshots a check reads in full (downloads, rebuilds, runs integrity_check on): pure
 * decisions, apart from any I/O. Two ways, after restic's `check --read-data-subset`:
 * - a one-off share (`--read-data=25%`): a random sample of that share of the snapshots;
 * - a rolling schedule (the `verify` sidecar job): each run reads the snapshots read least
 *   recently (never-read first), ceil(n / runsPerPeriod) of them, so with one run a day every
 *   snapshot is read at least once per `periodDays` while the set stays stable, and a new one is
 *   read within a period of appearing.
 */

/** A deterministic generator of numbers in [0, 1) (tests pass a seeded one). */
export type Random = () => number;

/**
 * `share` (0 < share <= 1) of `ids`, at least one when there are any, chosen at random; returned
 * in the order of `ids`.
 */
export function sampleShare(ids: readonly string[], share: number, random: Random = Math.random): string[] {
  if (!(share > 0 && share <= 1)) throw new RangeError(`share must be in (0, 1], got ${share}`);
  if (ids.length === 0) return [];
  const count = Math.max(1, Math.ceil(ids.length * share));
  const shuffled = [...ids];
  // Fisher-Yates, stopped once `count` are placed.
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (shuffled.length - i));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const chosen = new Set(shuffled.slice(0, count));
  return ids.filter((id) => chosen.has(id));
}

export interface RollingOptions {
  /** every snapshot is read at least once in this many runs (one run a day: the period in days) */
  runsPerPeriod: number;
  random?: Random;
}

/**
 * The snapshots this run of the rolling schedule reads: ceil(n / runsPerPeriod) of them (at least
 * one), least recently read first (`lastRead`: ms since the epoch; absent = never), ties broken at
 * random. Returned in the order of `ids`.
 */
export function pickRolling(ids: readonly string[], lastRead: ReadonlyMap<string, number>, opts: RollingOptions): string[] {
  if (!(opts.runsPerPeriod >= 1)) throw new RangeError(`runsPerPeriod must be at least 1, got ${opts.runsPerPeriod}`);
  if (ids.length === 0) return [];
  const random = opts.random ?? Math.random;
  const count = Math.min(ids.length, Math.max(1, Math.ceil(ids.length / opts.runsPerPeriod)));
  const keyed = ids.map((id) => ({ id, at: lastRead.get(id) ?? -Infinity, tie: random() }));
  keyed.sort((a, b) => a.at - b.at || a.tie - b.tie);
  const chosen = new Set(keyed.slice(0, count).map((k) => k.id));
  return ids.filter((id) => chosen.has(id));
}

/** Parses `--read-data` / `read_data`: true or "100%" = all, "N%" = a share, false/absent = none. */
export function parseReadData(value: string | boolean | undefined): { kind: 'none' } | { kind: 'all' } | { kind: 'share'; share: number } | { kind: 'invalid'; why: string } {
  if (value === undefined || value === false) return { kind: 'none' };
  if (value === true) return { kind: 'all' };
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
  if (!m) return { kind: 'invalid', why: `"${value}" is not a percentage like 10%` };
  const pct = Number(m[1]);
  if (!(pct > 0 && pct <= 100)) return { kind: 'invalid', why: `${pct}% is not between 0% (excluded) and 100%` };
  return pct === 100 ? { kind: 'all' } : { kind: 'share', share: pct / 100 };
}
