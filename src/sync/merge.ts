/**
 * The three-way decision for one row, pure: base = the row at the last sync, ours = the database
 * now, theirs = the remote now (each the row's JSON line, or undefined when absent).
 */
export type RowDecision = { kind: 'keep' } | { kind: 'apply'; row: string | undefined } | { kind: 'conflict' };

export function decideRow(base: string | undefined, ours: string | undefined, theirs: string | undefined): RowDecision {
  if (theirs === base) return { kind: 'keep' }; // the remote did not touch it
  if (ours === theirs) return { kind: 'keep' }; // both sides made the same change
  if (ours === base) return { kind: 'apply', row: theirs }; // only the remote changed it
  return { kind: 'conflict' };
}

export interface TableMergePlan {
  upserts: string[];
  deletes: string[];
  conflicts: Array<{ key: string; base: string | null; ours: string | null; theirs: string | null }>;
}

/** Rows are maps from primary-key JSON to the row's line. */
export function planTableMerge(base: Map<string, string>, ours: Map<string, string>, theirs: Map<string, string>): TableMergePlan {
  const plan: TableMergePlan = { upserts: [], deletes: [], conflicts: [] };
  const keys = [...new Set([...base.keys(), ...ours.keys(), ...theirs.keys()])].sort();
  for (const key of keys) {
    const b = base.get(key);
    const o = ours.get(key);
    const t = theirs.get(key);
    const d = decideRow(b, o, t);
    if (d.kind === 'apply') {
      if (d.row === undefined) plan.deletes.push(key);
      else plan.upserts.push(d.row);
    } else if (d.kind === 'conflict') plan.conflicts.push({ key, base: b ?? null, ours: o ?? null, theirs: t ?? null });
  }
  return plan;
}
