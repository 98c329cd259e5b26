import { compareSnapshotIds, parseSnapshotId, snapshotHost, type ParsedSnapshotId } from './id.js';

export { RetentionPolicySchema, type RetentionPolicy };
import { RetentionPolicySchema, type RetentionPolicy } from '../root/retention-schema.js';

export interface RetentionDecision {
  /** newest first; always includes unrecognized ids */
  keep: string[];
  /** newest first */
  prune: string[];
  /** kept id -> why, e.g. ['hourly', 'daily']; pruned ids have no entry */
  reasons: Record<string, string[]>;
}

export type AutomaticTier = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'annual';

/** Order of tiers in `reasons`: finest first. */
const TIERS: readonly AutomaticTier[] = ['hourly', 'daily', 'weekly', 'monthly', 'annual'];

/**
 * Decide which snapshots to keep. Pure: depends only on the ids (their embedded UTC
 * timestamps) and the policy, never on the clock or the files.
 */
export function decideRetention(ids: readonly string[], policy: RetentionPolicy): RetentionDecision {
  const valid = checkedPolicy(policy);
  const reasons = new Map<string, string[]>();
  const addReason = (id: string, reason: string) => reasons.set(id, [...(reasons.get(id) ?? []), reason]);

  const unique = [...new Set(ids)];
  const automatic: ParsedSnapshotId[] = [];
  const manual: ParsedSnapshotId[] = [];
  for (const id of unique) {
    const parsed = parseSnapshotId(id);
    // Never delete what we cannot date: it may be someone else's file or a future id format.
    if (!parsed) addReason(id, 'unrecognized');
    else (parsed.manual ? manual : automatic).push(parsed);
  }
  const newestFirst = (a: ParsedSnapshotId, b: ParsedSnapshotId) => compareSnapshotIds(b.id, a.id);
  automatic.sort(newestFirst);
  manual.sort(newestFirst);

  for (const tier of TIERS) {
    // only `annual` can be null, meaning every year
    for (const snap of newestPerPeriod(automatic, tier, valid[tier] ?? Infinity)) addReason(snap.id, tier);
  }
  for (const snap of manual.slice(0, valid.manual)) addReason(snap.id, 'manual');

  const all = unique.sort((a, b) => compareSnapshotIds(b, a));
  return {
    keep: all.filter((id) => reasons.has(id)),
    prune: all.filter((id) => !reasons.has(id)),
    // fromEntries defines own properties, so an id like "__proto__" cannot touch the prototype.
    reasons: Object.fromEntries(reasons),
  };
}

/**
 * `ids` by the machine each belongs to (id.ts snapshotHost: an id without a host is `thisHost`'s),
 * each group in the order given. Ids that are not snapshot ids are in no group.
 */
export function idsByHost(ids: readonly string[], thisHost: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const id of ids) {
    const host = snapshotHost(id, thisHost);
    if (host === null) continue;
    const group = groups.get(host);
    if (group) group.push(id);
    else groups.set(host, [id]);
  }
  return groups;
}

/**
 * decideRetention applied to each machine's snapshots on its own (idsByHost), merged: one
 * machine's snapshots never take the place of another's in a tier, so a host's set is exactly
 * what the policy keeps of its own ids. Unrecognized ids are kept, as decideRetention keeps them.
 * Pure, like decideRetention.
 */
export function decideRetentionByHost(ids: readonly string[], policy: RetentionPolicy, thisHost: string): RetentionDecision {
  const reasons = new Map<string, string[]>();
  const keep = new Set<string>();
  const unique = [...new Set(ids)];
  for (const group of idsByHost(unique, thisHost).values()) {
    const decision = decideRetention(group, policy);
    for (const id of decision.keep) keep.add(id);
    for (const [id, why] of Object.entries(decision.reasons)) reasons.set(id, why);
  }
  for (const id of unique) {
    if (parseSnapshotId(id)) continue;
    keep.add(id);
    reasons.set(id, ['unrecognized']);
  }
  if (unique.length === 0) checkedPolicy(policy);
  const all = unique.sort((a, b) => compareSnapshotIds(b, a));
  return {
    keep: all.filter((id) => keep.has(id)),
    prune: all.filter((id) => !keep.has(id)),
    // fromEntries defines own properties, so an id like "__proto__" cannot touch the prototype.
    reasons: Object.fromEntries(reasons),
  };
}

/**
 * The newest snapshot of each of the newest `limit` periods that contain one.
 * `newestFirst` must be sorted newest first, so the first snapshot seen in a period is its newest,
 * and periods are met newest first too (periods are contiguous, non-overlapping time ranges).
 */
function newestPerPeriod(newestFirst: readonly ParsedSnapshotId[], tier: AutomaticTier, limit: number): ParsedSnapshotId[] {
  const seen = new Set<string>();
  const picked: ParsedSnapshotId[] = [];
  for (const snap of newestFirst) {
    if (seen.size >= limit) break;
    const period = periodKey(snap.time, tier);
    if (seen.has(period)) continue;
    seen.add(period);
    picked.push(snap);
  }
  return picked;
}

/** The tier's period containing `time`, as a string unique to that period; UTC throughout. */
export function periodKey(time: Date, tier: AutomaticTier): string {
  const year = pad(time.getUTCFullYear(), 4);
  const month = pad(time.getUTCMonth() + 1);
  const day = pad(time.getUTCDate());
  switch (tier) {
    case 'hourly':
      return `${year}-${month}-${day}T${pad(time.getUTCHours())}`;
    case 'daily':
      return `${year}-${month}-${day}`;
    case 'weekly': {
      const w = isoWeek(time);
      return `${pad(w.year, 4)}-W${pad(w.week)}`;
    }
    case 'monthly':
      return `${year}-${month}`;
    case 'annual':
      return year;
  }
}

const DAY_MS = 86_400_000;

/**
 * ISO 8601 week (UTC): weeks start on Monday and belong to the year of their Thursday,
 * so week 1 holds the year's first Thursday and Dec 29-31 / Jan 1-3 may cross over.
 */
export function isoWeek(time: Date): { year: number; week: number } {
  const midnight = Math.floor(time.getTime() / DAY_MS) * DAY_MS;
  const mondayBased = (time.getUTCDay() + 6) % 7; // Monday 0 .. Sunday 6
  const thursday = new Date(midnight + (3 - mondayBased) * DAY_MS);
  const year = thursday.getUTCFullYear();
  const januaryFirst = new Date(0);
  januaryFirst.setUTCFullYear(year, 0, 1); // not Date.UTC, which maps years 0-99 to 19xx
  const week = 1 + Math.floor((thursday.getTime() - januaryFirst.getTime()) / (7 * DAY_MS));
  return { year, week };
}

/** Typed callers can still pass -1 or 2.5 at run time; a bad cap must not silently prune. */
function checkedPolicy(policy: RetentionPolicy): RetentionPolicy {
  const result = RetentionPolicySchema.safeParse(policy);
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join('.') || '(policy)'}: ${i.message}`).join('; ');
    throw new RangeError(`invalid retention policy: ${detail}`);
  }
  return result.data;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}
