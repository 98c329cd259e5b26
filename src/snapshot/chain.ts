import { z } from 'zod';

/**
 * The chain rule of incremental snapshots, as pure functions: when the next snapshot is a full one
 * and when a delta (and against which base), which archives a restore needs, and which snapshots
 * retention may delete. Nothing here reads files or clocks.
 *
 * A delta's base is the newest snapshot, provided its whole chain is there and intact. A full is
 * taken when there is no such base, when the chain's full is `maxFullAgeMs` old or more, when the
 * deltas since it hold `maxDeltaShare` of its size or more, when the chain already has
 * `maxDeltas` deltas, or after a vacuum, a page-size change or a replaced file. Hence the bound:
 * any snapshot restores from at most 1 + maxDeltas archives (defaults: 1 + 48), taken within
 * maxFullAgeMs (24 h) of each other, whose bytes are under (1 + maxDeltaShare) x the full's plus
 * the last delta's (defaults: 2x the full's plus the last delta's).
 */

export const ChainPolicySchema = z.object({
  /** a full at least this often, ms */
  maxFullAgeMs: z.number().int().positive().default(24 * 3600 * 1000),
  /**
   * a full once the deltas since the last full add up to this share of its size. 1 by default: a
   * full about daily at a few % of pages changed an hour (the full is most of a day's bytes), and a
   * restore reads at most twice the full's bytes plus the last delta
   */
  maxDeltaShare: z.number().positive().default(1),
  /** at most this many deltas after a full: a restore reads at most 1 + maxDeltas archives */
  maxDeltas: z.number().int().min(0).default(48),
});
export type ChainPolicy = z.infer<typeof ChainPolicySchema>;
export const DEFAULT_CHAIN_POLICY: ChainPolicy = ChainPolicySchema.parse({});

/** What the chain rule needs to know about a kept snapshot (of one database, or of a whole set). */
export interface ChainSnapshot {
  id: string;
  kind: 'full' | 'delta';
  /** the snapshot a delta applies to; null for a full */
  base: string | null;
  /** bytes stored for it */
  bytes: number;
  /** when it was taken, ms since the epoch */
  at: number;
  /** false when its archive is missing or failed its checksum; absent = intact */
  intact?: boolean;
}

/** Why the next snapshot has to be a full one. */
export type FullReason =
  | 'no_base'
  | 'base_damaged'
  | 'full_too_old'
  | 'deltas_too_big'
  | 'chain_too_long'
  | 'vacuum'
  | 'page_size_changed'
  | 'file_replaced'
  | 'forced';

/** What was noticed about the database since the last snapshot (each forces a full). */
export interface ChainEvents {
  vacuum?: boolean;
  pageSizeChanged?: boolean;
  fileReplaced?: boolean;
  forced?: boolean;
}

export type NextSnapshot =
  | { kind: 'full'; reason: FullReason }
  /** chainLength: archives a restore of the new delta will read (its full, the deltas, itself) */
  | { kind: 'delta'; base: string; chainLength: number };

export interface Chain {
  /** ids from the full to the snapshot asked for, in the order a restore applies them */
  ids: string[];
  /** every link is there and the chain starts at a full */
  complete: boolean;
  /** every snapshot of the chain is intact */
  intact: boolean;
  /** when incomplete: the id that is missing (or the one whose link loops) */
  missing?: string;
}

/** The chain of snapshot `id` within `snapshots`: follows bases down to a full. */
export function chainOf(snapshots: readonly ChainSnapshot[], id: string): Chain {
  const byId = new Map(snapshots.map((s) => [s.id, s]));
  const ids: string[] = [];
  const seen = new Set<string>();
  let intact = true;
  let cur: string | null = id;
  while (cur !== null) {
    const s = byId.get(cur);
    if (!s || seen.has(cur)) return { ids: ids.reverse(), complete: false, intact: false, missing: cur };
    seen.add(cur);
    ids.push(cur);
    if (s.intact === false) intact = false;
    if (s.kind === 'full') return { ids: ids.reverse(), complete: true, intact };
    cur = s.base;
    if (cur === null) return { ids: ids.reverse(), complete: false, intact: false, missing: s.id };
  }
  return { ids: ids.reverse(), complete: false, intact: false };
}

/**
 * Full or delta for the next snapshot taken at `now` (ms), given the kept snapshots, what was
 * noticed since the last one, and the policy. Pure; never throws.
 */
export function decideNext(snapshots: readonly ChainSnapshot[], now: number, events: ChainEvents = {}, policy: ChainPolicy = DEFAULT_CHAIN_POLICY): NextSnapshot {
  if (events.forced) return { kind: 'full', reason: 'forced' };
  if (events.fileReplaced) return { kind: 'full', reason: 'file_replaced' };
  if (events.pageSizeChanged) return { kind: 'full', reason: 'page_size_changed' };
  if (events.vacuum) return { kind: 'full', reason: 'vacuum' };
  const newest = [...snapshots].sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1))[0];
  if (!newest) return { kind: 'full', reason: 'no_base' };
  const chain = chainOf(snapshots, newest.id);
  if (!chain.complete || !chain.intact) return { kind: 'full', reason: 'base_damaged' };
  const byId = new Map(snapshots.map((s) => [s.id, s]));
  const full = byId.get(chain.ids[0]!)!;
  const deltas = chain.ids.length - 1;
  if (now - full.at >= policy.maxFullAgeMs) return { kind: 'full', reason: 'full_too_old' };
  if (deltas + 1 > policy.maxDeltas) return { kind: 'full', reason: 'chain_too_long' };
  const deltaBytes = chain.ids.slice(1).reduce((sum, id) => sum + byId.get(id)!.bytes, 0);
  if (deltaBytes >= policy.maxDeltaShare * full.bytes) return { kind: 'full', reason: 'deltas_too_big' };
  return { kind: 'delta', base: newest.id, chainLength: deltas + 2 };
}

export interface RetentionWithChains {
  /** the snapshots to keep: those asked for and every snapshot their chains need */
  keep: string[];
  /** the rest: safe to delete (no kept snapshot depends on them) */
  deletable: string[];
  /** kept only because a kept snapshot's chain needs them */
  keptAsBase: string[];
}

/**
 * Widens a retention decision (the ids the policy keeps) to whole chains: a snapshot that a kept
 * snapshot depends on is kept too, whatever the policy says. Each kept snapshot adds at most
 * maxDeltas + 1 archives. Ids in `keepIds` that are not in `snapshots` are ignored. Pure.
 */
export function protectChains(snapshots: readonly ChainSnapshot[], keepIds: Iterable<string>): RetentionWithChains {
  const byId = new Map(snapshots.map((s) => [s.id, s]));
  const asked = new Set([...keepIds].filter((id) => byId.has(id)));
  const keep = new Set<string>();
  for (const id of asked) for (const link of chainOf(snapshots, id).ids) keep.add(link);
  const order = snapshots.map((s) => s.id);
  return {
    keep: order.filter((id) => keep.has(id)),
    deletable: order.filter((id) => !keep.has(id)),
    keptAsBase: order.filter((id) => keep.has(id) && !asked.has(id)),
  };
}
