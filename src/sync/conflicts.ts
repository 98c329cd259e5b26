/**
 * Sync conflicts, pure: how a pull records the rows changed on both sides (bounded values with the
 * hash of the whole line), which earlier resolutions still hold, and what taking one side means for
 * one row (resolveDecision). The I/O is in pull.ts (recording) and resolve.ts (applying).
 */
import { createHash } from 'node:crypto';
import type { ConflictRecord, ConflictSet, ConflictValue } from './state.js';

/** Characters of a row line kept in the record; the hash covers the whole line. */
export const CONFLICT_LINE_MAX = 1_000;

export function lineHash(line: string): string {
  return createHash('sha256').update(line, 'utf8').digest('hex');
}

/** A row line as a conflict keeps it: whole up to CONFLICT_LINE_MAX characters, else cut and marked. */
export function conflictValue(line: string | null | undefined): ConflictValue | null {
  if (line === null || line === undefined) return null;
  const cut = line.length > CONFLICT_LINE_MAX;
  return { line: cut ? `${line.slice(0, CONFLICT_LINE_MAX)}…` : line, bytes: Buffer.byteLength(line, 'utf8'), sha256: lineHash(line), cut };
}

/** A conflict as a pull found it (whole lines). */
export interface FoundConflict {
  database: string;
  table: string;
  key: string;
  path?: string;
  base: string | null;
  ours: string | null;
  theirs: string | null;
}

const identity = (c: { database: string; table: string; key: string }) => JSON.stringify([c.database, c.table, c.key]);
const sameValue = (a: ConflictValue | null, line: string | null) => (a === null ? line === null : line !== null && a.sha256 === lineHash(line));

/**
 * The earlier resolution of `found` that still holds: 'ours' recorded for the same row while both
 * sides are still exactly the lines it was resolved on. (A 'theirs' resolution makes both sides
 * equal, so such a row is no conflict any more.) Undefined when there is none.
 */
export function heldResolution(previous: ConflictSet | null | undefined, found: FoundConflict): ConflictRecord | undefined {
  const before = previous ? indexOf(previous).get(identity(found)) : undefined;
  if (!before?.resolved || before.resolved.take !== 'ours') return undefined;
  return sameValue(before.ours, found.ours) && sameValue(before.theirs, found.theirs) ? before : undefined;
}

const indexes = new WeakMap<ConflictSet, Map<string, ConflictRecord>>();

/** The records of a set by identity, built once per set (a pull checks every conflict it finds). */
function indexOf(set: ConflictSet): Map<string, ConflictRecord> {
  let index = indexes.get(set);
  if (!index) {
    index = new Map();
    for (const i of set.items) if (!index.has(identity(i))) index.set(identity(i), i);
    indexes.set(set, index);
  }
  return index;
}

/** The record a pull leaves: every conflict it found, each carrying a resolution that still holds. */
export function recordConflicts(
  previous: ConflictSet | null | undefined,
  found: readonly FoundConflict[],
  at: { base: string; remote: string; branch: string; rejected: number; now: string },
): ConflictSet {
  return {
    base_commit: at.base,
    remote_commit: at.remote,
    branch: at.branch,
    recorded_at: at.now,
    rejected: at.rejected,
    items: found.map((f) => ({
      database: f.database,
      table: f.table,
      key: f.key,
      ...(f.path !== undefined ? { path: f.path } : {}),
      base: conflictValue(f.base),
      ours: conflictValue(f.ours),
      theirs: conflictValue(f.theirs),
      resolved: heldResolution(previous, f)?.resolved ?? null,
    })),
  };
}

/** Whether `key` (as a caller typed it) names the row whose key line is `recorded`: the line itself, or the value of a one-column key ("5", "\"abc\"", "abc"). */
export function keyMatches(recorded: string, key: string): boolean {
  if (key === recorded) return true;
  let parsed: unknown;
  try {
    parsed = JSON.parse(recorded);
  } catch {
    return false;
  }
  if (!parsed || typeof parsed !== 'object') return false;
  const values = Object.values(parsed as Record<string, unknown>);
  if (values.length !== 1) return false;
  const v = values[0];
  return JSON.stringify(v) === key || (typeof v === 'string' && v === key) || (typeof v === 'number' && String(v) === key);
}

/** What resolving one conflict does to the live row. */
export type ResolveDecision =
  | { kind: 'write'; action: 'insert' | 'update'; line: string }
  | { kind: 'delete' }
  | { kind: 'keep_ours' }
  | { kind: 'stale'; reason: string };

/**
 * The decision for one conflict, pure. `live` and `remote` are the row's whole lines now (null when
 * absent): the live database and the remote commit the conflict came from. A side that is no longer
 * what the pull recorded is stale (the user would decide on rows they did not see): pull again.
 */
export function resolveDecision(conflict: ConflictRecord, take: 'ours' | 'theirs', live: string | null, remote: string | null): ResolveDecision {
  if (!sameValue(conflict.ours, live)) {
    return { kind: 'stale', reason: 'the row in the database changed since the pull recorded this conflict' };
  }
  if (!sameValue(conflict.theirs, remote)) {
    return { kind: 'stale', reason: 'the remote row is not the one the pull recorded (the sync clone lost that commit)' };
  }
  if (take === 'ours') return { kind: 'keep_ours' };
  if (remote === null) return live === null ? { kind: 'keep_ours' } : { kind: 'delete' };
  return { kind: 'write', action: live === null ? 'insert' : 'update', line: remote };
}

/** Whether every conflict of `set` is resolved. */
export function allResolved(set: ConflictSet): boolean {
  return set.items.every((i) => i.resolved !== null);
}
