import type Database from 'better-sqlite3';
import { WbError } from '../core/errors.js';
import { quoteIdent } from '../core/sqlite-util.js';
import {
  allShapes,
  checkPlainExpression,
  childKeys,
  columnValues,
  hashRows,
  keyNames,
  RowReader,
  rowKey,
  sameValues,
  showKey,
  showRow,
  showValue,
  type Row,
  type ShownValue,
  type SqlValue,
  type TableShape,
} from './rows.js';

/**
 * The plan of a row recovery, computed from two connections: the snapshot's rebuilt copy and the
 * live database (or a copy of it, for a dry run). Pure reading: nothing is written here.
 */

export type IncludeKind = 'parents' | 'children';
export type OnConflict = 'refuse' | 'keep_live' | 'use_snapshot';

/** What was asked: the rows of one table, by key or by a plain expression, and what may come with them. */
export interface RecoverRequest {
  table: string;
  /** each a key value, or the list of a composite key's values */
  keys?: ReadonlyArray<SqlValue | readonly SqlValue[]> | undefined;
  where?: string | undefined;
  include: readonly IncludeKind[];
  onConflict: OnConflict;
}

/** Rows chosen at most (by keys or where): a recovery is for what a mistake removed, not a whole restore. */
export const MAX_ROWS = 100_000;
/** Rows of each kind shown in a plan's samples. */
export const SAMPLE_ROWS = 20;

/** Why a row is in the plan. */
export type RowRole = 'chosen' | 'parent' | 'child';

interface PlannedRow {
  row: Row;
  role: RowRole;
  /** the row of the plan that brought this one in (a parent's or child's reason), else null */
  via: Row | null;
  action: 'insert' | 'update' | 'already_there' | 'conflict' | 'keep_live';
  live: Row | null;
}

export interface MissingParent {
  table: string;
  key: ShownValue | ShownValue[] | null;
  /** the referencing values */
  values: Record<string, ShownValue>;
  in_snapshot: boolean;
  needed_by: { table: string; key: ShownValue | ShownValue[] };
}

export interface MissingChild {
  table: string;
  key: ShownValue | ShownValue[];
  child_of: { table: string; key: ShownValue | ShownValue[] };
  on_delete: string;
}

export interface TableCounts {
  table: string;
  to_insert: number;
  to_update: number;
  already_there: number;
  conflicts: number;
  kept_live: number;
}

export interface RecoverPlan {
  table: string;
  key_columns: string[];
  /** rows the keys or the expression chose in the snapshot */
  chosen: number;
  /** keys asked for that the snapshot does not hold */
  keys_not_in_snapshot: Array<ShownValue | ShownValue[]>;
  counts: { to_insert: number; to_update: number; already_there: number; conflicts: number; kept_live: number; parents_included: number; children_included: number };
  tables: TableCounts[];
  conflicts: { count: number; sample: Array<{ table: string; key: ShownValue | ShownValue[]; live: Record<string, ShownValue>; snapshot: Record<string, ShownValue> }> };
  parents_missing: { count: number; not_in_snapshot: number; sample: MissingParent[] };
  children_missing: { count: number; sample: MissingChild[] };
  sample: Array<{ table: string; role: RowRole; action: string; key: ShownValue | ShownValue[]; row: Record<string, ShownValue> }>;
  /** empty when the plan can be applied; else why not, each saying what to pass to resolve it */
  blocked_by: string[];
  /** sha256 of the rows to write and their values: what a consent is bound to */
  rows_sha256: string;
}

/** The plan and the rows it writes, in the order they are written. */
export interface ComputedPlan {
  plan: RecoverPlan;
  writes: Array<{ shape: TableShape; row: Row; action: 'insert' | 'update' }>;
}

/**
 * Computes what recovering the chosen rows means against `live`: the rows to insert, those already
 * there, conflicts, the parents the rows need and the children (removed by a cascade) that depend
 * on them, including either when asked.
 * @throws WbError `invalid_input` (no such table, a refused expression, a key of the wrong shape, too
 *   many rows), `restore_refused` when the table's columns differ between the snapshot and live
 */
export function computePlan(snapshotDb: Database.Database, liveDb: Database.Database, req: RecoverRequest): ComputedPlan {
  const snapShapes = allShapes(snapshotDb);
  const liveShapes = allShapes(liveDb);
  // SQLite's names are case-insensitive: "Tasks" names the table tasks.
  const shape = snapShapes.get(req.table) ?? [...snapShapes.values()].find((t) => t.name.toLowerCase() === req.table.toLowerCase());
  if (!shape) {
    throw new WbError('invalid_input', `The snapshot has no table named ${req.table} in this database.`, `Its tables: ${[...snapShapes.keys()].slice(0, 30).join(', ') || 'none'}.`);
  }
  const snap = new RowReader(snapshotDb);
  const live = new RowReader(liveDb);
  const sameShape = (t: string) => {
    const a = snapShapes.get(t);
    const b = liveShapes.get(t);
    if (!b) throw new WbError('restore_refused', `Table ${t} does not exist in the live database, so its rows cannot be put back. Nothing was changed.`, 'Restore the whole database (data_restore) if its schema changed since the snapshot.');
    if (JSON.stringify([a!.columns, a!.key]) !== JSON.stringify([b.columns, b.key])) {
      throw new WbError('restore_refused', `Table ${t} has other columns live (${b.columns.join(', ')}) than in the snapshot (${a!.columns.join(', ')}), so its rows cannot be put back as they were. Nothing was changed.`, 'Restore the whole database (data_restore), or copy the rows by hand with data_snapshot_query.');
    }
  };
  sameShape(shape.name);

  const { chosen, notFound } = chooseRows(snap, shape, req);
  const inPlan = new Map<string, PlannedRow>();
  const queue: PlannedRow[] = [];
  const add = (row: Row, role: RowRole, via: Row | null) => {
    // A rowid table accepts NULL in a primary key other than INTEGER PRIMARY KEY, in any number of
    // rows: such a key names no one row live, so it could be matched to (or overwrite) another.
    if (row.id.some((v) => v === null) && snapShapes.get(row.table)?.key) {
      throw new WbError('restore_refused', `A row of ${row.table} to put back has NULL in its primary key (${keyNames(snapShapes.get(row.table)!).join(', ')}), so it does not identify one row live (several rows may have NULL there). Nothing was changed.`, 'Leave that row out (add e.g. AND key IS NOT NULL to where), restore the whole database with data_restore, or copy the row by hand with data_snapshot_query.');
    }
    const k = rowKey(row.table, row.id);
    if (inPlan.has(k)) return;
    const p: PlannedRow = { row, role, via, action: 'insert', live: null };
    inPlan.set(k, p);
    queue.push(p);
  };
  for (const r of chosen) add(r, 'chosen', null);

  const includeParents = req.include.includes('parents');
  const includeChildren = req.include.includes('children');
  const childrenMissing: MissingChild[] = [];
  let childrenMissingCount = 0;
  const childrenSeen = new Set<string>();
  // The closure: parents the rows need (when asked), children that depend on chosen rows.
  for (let i = 0; i < queue.length; i++) {
    const p = queue[i]!;
    const s = snapShapes.get(p.row.table)!;
    if (includeParents) {
      for (const fk of s.parents) {
        const vals = columnValues(s, p.row, fk.from);
        if (vals.some((v) => v === null)) continue;
        const parentShape = snapShapes.get(fk.parent);
        if (!parentShape) continue;
        sameShape(fk.parent);
        if (live.exists(parentShape, fk.to, vals)) continue;
        const [parent] = snap.byColumns(parentShape, fk.to, vals, 1);
        if (parent) add(parent, 'parent', p.row);
      }
    }
    if (p.role === 'parent') continue; // a parent's other children were not asked for
    for (const fk of childKeys(snapShapes, p.row.table)) {
      const childShape = snapShapes.get(fk.child)!;
      const vals = columnValues(s, p.row, fk.to);
      if (vals.some((v) => v === null)) continue;
      for (const child of snap.byColumns(childShape, fk.from, vals)) {
        const k = rowKey(child.table, child.id);
        if (inPlan.has(k) || childrenSeen.has(k)) continue;
        if (!liveShapes.has(fk.child)) continue;
        if (live.byId(childShape, child.id)) continue;
        if (includeChildren) {
          sameShape(fk.child);
          add(child, 'child', p.row);
        } else {
          childrenSeen.add(k);
          childrenMissingCount++;
          if (childrenMissing.length < SAMPLE_ROWS) childrenMissing.push({ table: child.table, key: showKey(child.id), child_of: { table: p.row.table, key: showKey(p.row.id) }, on_delete: fk.on_delete });
        }
      }
    }
    if (inPlan.size > MAX_ROWS * 2) {
      throw new WbError('invalid_input', `Recovering these rows would bring in more than ${MAX_ROWS * 2} rows with their parents and children. Nothing was changed.`, 'Choose fewer rows (keys or a narrower where), or restore the whole database with data_restore.');
    }
  }

  // Each row against live: missing (insert), identical, or a conflict.
  for (const p of inPlan.values()) {
    const s = snapShapes.get(p.row.table)!;
    p.live = live.byId(s, p.row.id);
    if (!p.live) p.action = 'insert';
    else if (sameValues(p.live, p.row)) p.action = 'already_there';
    else p.action = req.onConflict === 'use_snapshot' ? 'update' : req.onConflict === 'keep_live' ? 'keep_live' : 'conflict';
  }

  // Parents still missing: live lacks them and the plan does not bring them.
  const parentsMissing: MissingParent[] = [];
  let parentsMissingCount = 0;
  let parentsNotInSnapshot = 0;
  const parentSeen = new Set<string>();
  for (const p of inPlan.values()) {
    if (p.action !== 'insert' && p.action !== 'update') continue;
    const s = snapShapes.get(p.row.table)!;
    for (const fk of s.parents) {
      const vals = columnValues(s, p.row, fk.from);
      if (vals.some((v) => v === null)) continue;
      const parentShape = snapShapes.get(fk.parent) ?? liveShapes.get(fk.parent);
      if (!parentShape) continue;
      if (liveShapes.has(fk.parent) && live.exists(parentShape, fk.to, vals)) continue;
      const [parent] = snapShapes.has(fk.parent) ? snap.byColumns(parentShape, fk.to, vals, 1) : [];
      if (parent) {
        const planned = inPlan.get(rowKey(parent.table, parent.id));
        if (planned && (planned.action === 'insert' || planned.action === 'update')) continue;
      }
      const seenKey = JSON.stringify([fk.parent, fk.to, vals.map(String)]);
      if (parentSeen.has(seenKey)) continue;
      parentSeen.add(seenKey);
      parentsMissingCount++;
      if (!parent) parentsNotInSnapshot++;
      if (parentsMissing.length < SAMPLE_ROWS) {
        const values: Record<string, ShownValue> = {};
        fk.to.forEach((c, i) => (values[c] = showValue(vals[i]!)));
        parentsMissing.push({ table: fk.parent, key: parent ? showKey(parent.id) : null, values, in_snapshot: parent !== undefined, needed_by: { table: p.row.table, key: showKey(p.row.id) } });
      }
    }
  }

  return assemble(shape, req, inPlan, notFound, snapShapes, { parentsMissing, parentsMissingCount, parentsNotInSnapshot, childrenMissing, childrenMissingCount });
}

/** The rows the request chooses in the snapshot, and the keys it does not hold. */
function chooseRows(snap: RowReader, shape: TableShape, req: RecoverRequest): { chosen: Row[]; notFound: Array<ShownValue | ShownValue[]> } {
  const width = keyNames(shape).length;
  if ((req.keys === undefined) === (req.where === undefined)) {
    throw new WbError('invalid_input', 'Choose the rows either with keys or with where (one of the two).', `keys are values of ${keyNames(shape).join(', ')} (${width > 1 ? 'each a list of that many values' : 'one value each'}); where is a plain expression over the columns, e.g. project_id = 3.`);
  }
  if (req.where !== undefined) {
    checkPlainExpression(req.where);
    let rows: Row[];
    try {
      rows = snap.byWhere(shape, req.where, MAX_ROWS);
    } catch (err) {
      throw new WbError('invalid_input', `The where expression cannot be evaluated on ${shape.name}: ${(err as Error).message}.`, `Use the table's columns: ${shape.columns.join(', ')}.`);
    }
    if (rows.length > MAX_ROWS) throw new WbError('invalid_input', `The where expression chooses more than ${MAX_ROWS} rows.`, 'Narrow it, or restore the whole database with data_restore.');
    return { chosen: rows, notFound: [] };
  }
  const keys = req.keys!;
  if (keys.length === 0) throw new WbError('invalid_input', 'keys is empty: name at least one row.');
  if (keys.length > MAX_ROWS) throw new WbError('invalid_input', `At most ${MAX_ROWS} keys in one recovery.`, 'Use a where expression, or recover in parts.');
  const chosen: Row[] = [];
  const notFound: Array<ShownValue | ShownValue[]> = [];
  const seen = new Set<string>();
  for (const k of keys) {
    const id = (Array.isArray(k) ? k : [k]) as SqlValue[];
    if (id.length !== width) throw new WbError('invalid_input', `A key of ${shape.name} has ${width} value(s) (${keyNames(shape).join(', ')}); got ${id.length}.`);
    const row = snap.byId(shape, id);
    if (!row) {
      if (notFound.length < SAMPLE_ROWS) notFound.push(showKey(id));
      continue;
    }
    const rk = rowKey(row.table, row.id);
    if (!seen.has(rk)) chosen.push(row);
    seen.add(rk);
  }
  return { chosen, notFound };
}

function assemble(
  shape: TableShape,
  req: RecoverRequest,
  inPlan: Map<string, PlannedRow>,
  notFound: Array<ShownValue | ShownValue[]>,
  shapes: ReadonlyMap<string, TableShape>,
  missing: { parentsMissing: MissingParent[]; parentsMissingCount: number; parentsNotInSnapshot: number; childrenMissing: MissingChild[]; childrenMissingCount: number },
): ComputedPlan {
  const planned = [...inPlan.values()];
  const byTable = new Map<string, TableCounts>();
  const counts = { to_insert: 0, to_update: 0, already_there: 0, conflicts: 0, kept_live: 0, parents_included: 0, children_included: 0 };
  for (const p of planned) {
    const t = byTable.get(p.row.table) ?? { table: p.row.table, to_insert: 0, to_update: 0, already_there: 0, conflicts: 0, kept_live: 0 };
    byTable.set(p.row.table, t);
    const field = ({ insert: 'to_insert', update: 'to_update', already_there: 'already_there', conflict: 'conflicts', keep_live: 'kept_live' } as const)[p.action];
    t[field]++;
    counts[field]++;
    if ((p.action === 'insert' || p.action === 'update') && p.role === 'parent') counts.parents_included++;
    if ((p.action === 'insert' || p.action === 'update') && p.role === 'child') counts.children_included++;
  }
  // Parents first, then the chosen rows, then children: the order a reader expects (foreign keys are deferred anyway).
  const order: Record<RowRole, number> = { parent: 0, chosen: 1, child: 2 };
  const writes = planned
    .filter((p) => p.action === 'insert' || p.action === 'update')
    .sort((a, b) => order[a.role] - order[b.role])
    .map((p) => ({ shape: shapes.get(p.row.table)!, row: p.row, action: p.action as 'insert' | 'update' }));
  const conflicts = planned.filter((p) => p.action === 'conflict');
  const blocked: string[] = [];
  if (conflicts.length) {
    blocked.push(`${conflicts.length} row(s) exist live with other values (conflicts): pass on_conflict "keep_live" to leave them as they are, or "use_snapshot" to put the snapshot's values back`);
  }
  if (missing.parentsMissingCount) {
    const inSnap = missing.parentsMissingCount - missing.parentsNotInSnapshot;
    if (inSnap > 0 && !req.include.includes('parents')) blocked.push(`${inSnap} parent row(s) the rows need are missing live: pass include ["parents"] to put them back too`);
    if (missing.parentsNotInSnapshot > 0) blocked.push(`${missing.parentsNotInSnapshot} parent row(s) the rows need are neither live nor in the snapshot: leave out the rows that need them`);
  }
  if (writes.length === 0 && !blocked.length && planned.length === 0) blocked.push('the snapshot holds none of the rows asked for');
  const sample = planned
    .filter((p) => p.action === 'insert' || p.action === 'update')
    .slice(0, SAMPLE_ROWS)
    .map((p) => ({ table: p.row.table, role: p.role, action: p.action, key: showKey(p.row.id), row: showRow(shapes.get(p.row.table)!, p.row) }));
  const plan: RecoverPlan = {
    table: shape.name,
    key_columns: keyNames(shape),
    chosen: planned.filter((p) => p.role === 'chosen').length,
    keys_not_in_snapshot: notFound,
    counts,
    tables: [...byTable.values()],
    conflicts: {
      count: conflicts.length,
      sample: conflicts.slice(0, SAMPLE_ROWS).map((p) => ({ table: p.row.table, key: showKey(p.row.id), live: showRow(shapes.get(p.row.table)!, p.live!), snapshot: showRow(shapes.get(p.row.table)!, p.row) })),
    },
    parents_missing: { count: missing.parentsMissingCount, not_in_snapshot: missing.parentsNotInSnapshot, sample: missing.parentsMissing },
    children_missing: { count: missing.childrenMissingCount, sample: missing.childrenMissing },
    sample,
    blocked_by: blocked,
    rows_sha256: hashRows(writes.map((w) => w.row)),
  };
  return { plan, writes };
}

/** Foreign-key violations of the tables written, as comparable texts (violations already there are not ours). */
export function foreignKeyViolations(db: Database.Database, tables: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const t of tables) {
    for (const v of db.prepare(`PRAGMA foreign_key_check(${quoteIdent(t)})`).all() as Array<{ table: string; rowid: number | null; parent: string; fkid: number }>) {
      out.add(`${v.table} row ${v.rowid ?? '?'} -> ${v.parent} (foreign key ${v.fkid})`);
    }
  }
  return out;
}
