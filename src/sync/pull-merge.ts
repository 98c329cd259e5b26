/**
 * Pull's three-way merge of one table, for every transport: each side's rows keyed by primary key,
 * the per-row decision (merge.ts, pure), conflicts and rejections recorded in the result, and the
 * statements that apply the remote's changes (run later, in the database's one transaction,
 * pull-apply.ts). The base and the remote's rows come from the transport, as TheirRows (the git
 * mirror's: pull-remote.ts gitRows).
 */
import Database from 'better-sqlite3';
import { quoteIdent } from '../core/sqlite-util.js';
import { readRows } from './materialize.js';
import { planTableMerge } from './merge.js';
import { rowLine, TextBytes, type SqlValue } from './rows.js';
import { tableShape, type TableShape } from './sqlite-objects.js';

/** A remote input (a file, an issue, a directory) that cannot be used; nothing from its table is applied. */
export class Rejection extends Error {
  constructor(
    /** where it is on the remote, as the transport names it ("notes/notes.jsonl") */
    readonly path: string,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * The transport's side of a merge: a table's rows at the last sync (base) and on the remote now
 * (theirs), in table column order, values as rows.ts reads them (so an unchanged row compares equal
 * to the database's). Reads only.
 */
export interface TheirRows {
  /** where the table lives on the remote, for rejections and messages ("notes/notes.jsonl") */
  where(dbName: string, table: string): string;
  /** both sides' rows of the table; throws Rejection for remote input that cannot be read */
  rows(dbName: string, table: string, shape: TableShape): Promise<{ base: SqlValue[][]; theirs: SqlValue[][] }>;
  /** where one row lives on the remote, reported with its conflict (a document file), or undefined */
  placeOf?(dbName: string, table: string, key: readonly SqlValue[] | undefined): string | undefined;
}

/** What a pull reports, filled table by table (the fields of SyncPullResult that merging writes). */
export interface MergeReport {
  applied: Record<string, { upserts: number; deletes: number }>;
  conflicts: Array<{ table: string; key: string; base: string | null; ours: string | null; theirs: string | null; path?: string }>;
  rejected: Array<{ path: string; reason: string }>;
}

/** A table's rows on the three sides: the last synced commit, this database, the remote head. */
interface Sides {
  base: SqlValue[][];
  ours: SqlValue[][];
  theirs: SqlValue[][];
}

function keyValues(shape: TableShape, row: readonly SqlValue[]): SqlValue[] {
  return shape.pk.map((c) => row[shape.columns.indexOf(c)] ?? null);
}

function keyOf(shape: TableShape, row: readonly SqlValue[]): string {
  return rowLine(shape.pk, keyValues(shape, row));
}

function toMap(shape: TableShape, rows: SqlValue[][]): Map<string, string> {
  return new Map(rows.map((r) => [keyOf(shape, r), rowLine(shape.columns, r)]));
}

/**
 * Three-way merge of one table: conflicts and rejections go into `report`; returns the changes
 * to apply (run later, in the database's one transaction), or null when there are none.
 */
export async function mergeTable(sides: TheirRows, report: MergeReport, db: Database.Database, dbName: string, table: string): Promise<(() => void) | null> {
  const shape = mergeableShape(sides, report, db, dbName, table);
  if (!shape) return null;
  const rows = await readTableSides(sides, report, db, dbName, table, shape);
  if (!rows) return null;
  const plan = planTableMerge(toMap(shape, rows.base), toMap(shape, rows.ours), toMap(shape, rows.theirs));
  const keys = new Map([...rows.base, ...rows.ours, ...rows.theirs].map((r) => [keyOf(shape, r), keyValues(shape, r)]));
  for (const c of plan.conflicts) {
    const file = sides.placeOf?.(dbName, table, keys.get(c.key));
    report.conflicts.push({ table: `${dbName}.${table}`, ...c, ...(file ? { path: file } : {}) });
  }
  if (!plan.upserts.length && !plan.deletes.length) return null;
  report.applied[`${dbName}.${table}`] = { upserts: plan.upserts.length, deletes: plan.deletes.length };
  // Rows are applied as read (not re-parsed from their canonical line), so INTEGER and REAL stay apart.
  const theirsByLine = new Map(rows.theirs.map((r) => [rowLine(shape.columns, r), r]));
  return tableWriter(db, table, shape, plan.upserts.map((line) => theirsByLine.get(line)!), plan.deletes.map((key) => keys.get(key)!));
}

/** One row of a side: its line (as the merge compares it) and its values (as they are written). */
export interface KeyedRow {
  line: string;
  row: SqlValue[];
}

/** A table's rows in the database now and at the remote commit, by key line (as pull reports keys). */
export interface TableRowsByKey {
  shape: TableShape;
  ours: Map<string, KeyedRow>;
  theirs: Map<string, KeyedRow>;
}

/**
 * The live and remote rows of one table read exactly as a pull reads them, for resolving its
 * conflicts (resolve.ts); `{ rejected }` with the reason when the pull could not merge the table.
 */
export async function tableRowsByKey(sides: TheirRows, db: Database.Database, dbName: string, table: string): Promise<TableRowsByKey | { rejected: string }> {
  const scratch: MergeReport = { applied: {}, conflicts: [], rejected: [] };
  const shape = mergeableShape(sides, scratch, db, dbName, table);
  const rows = shape ? await readTableSides(sides, scratch, db, dbName, table, shape) : null;
  if (!shape || !rows) return { rejected: scratch.rejected.map((r) => `${r.path}: ${r.reason}`).join('; ') || `${dbName}.${table} cannot be read` };
  const byKey = (list: SqlValue[][]) => new Map(list.map((r) => [keyOf(shape, r), { line: rowLine(shape.columns, r), row: r }]));
  return { shape, ours: byKey(rows.ours), theirs: byKey(rows.theirs) };
}

/** The primary-key values of a row. */
export function keyValuesOf(shape: TableShape, row: readonly SqlValue[]): SqlValue[] {
  return keyValues(shape, row);
}

/** The table's shape when rows can be matched (it exists, it has a primary key); otherwise rejected in `report`. */
function mergeableShape(sides: TheirRows, report: MergeReport, db: Database.Database, dbName: string, table: string): TableShape | null {
  const where = sides.where(dbName, table);
  const shape = tableShape(db, table);
  if (!shape) {
    report.rejected.push({ path: where, reason: 'the table does not exist in the database (schema changes are not pulled)' });
    return null;
  }
  if (!shape.pk.length) {
    report.rejected.push({ path: where, reason: 'the table has no primary key, so rows cannot be matched' });
    return null;
  }
  return shape;
}

/** The three sides' rows; null (rejected in `report`) when a remote file does not parse. */
async function readTableSides(sides: TheirRows, report: MergeReport, db: Database.Database, dbName: string, table: string, shape: TableShape): Promise<Sides | null> {
  let base: SqlValue[][];
  let theirs: SqlValue[][];
  try {
    ({ base, theirs } = await sides.rows(dbName, table, shape));
  } catch (err) {
    if (!(err instanceof Rejection)) throw err;
    report.rejected.push({ path: err.path, reason: err.message });
    return null;
  }
  // Read as materialize does (text that is not UTF-8 as its bytes), so an unchanged row compares equal to the mirror's.
  const ours =
    shape.kind === 'table'
      ? [...readRows(db, { ...shape, rowid: null })]
      : (db.prepare(`SELECT ${shape.columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(table)}`).raw(true).all() as SqlValue[][]);
  return { base, ours, theirs };
}

/**
 * The statements writing `upserts` (whole rows, in table column order) and deleting the rows of
 * `deletes` (primary-key values), prepared once each. Pull and github_sync_resolve write through it,
 * inside applyExactly (pull-apply.ts).
 */
export function tableWriter(db: Database.Database, table: string, shape: TableShape, upserts: readonly SqlValue[][], deletes: readonly SqlValue[][]): () => void {
  // An upsert, never INSERT OR REPLACE: REPLACE deletes the old row first, and with foreign keys on
  // that cascades to its children (an edited project on GitHub would delete its tasks here).
  const others = shape.columns.filter((c) => !shape.pk.includes(c));
  const onConflict = others.length ? `DO UPDATE SET ${others.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}` : 'DO NOTHING';
  // TEXT that is not UTF-8 is bound as its bytes and cast back to TEXT (a JS string cannot hold it).
  const mark = (v: SqlValue) => (v instanceof TextBytes ? 'CAST(? AS TEXT)' : '?');
  const bind = (row: readonly SqlValue[]) => row.map((v) => (v instanceof TextBytes ? v.bytes : v));
  const upsertSql = (row: readonly SqlValue[]) =>
    `INSERT INTO ${quoteIdent(table)} (${shape.columns.map(quoteIdent).join(', ')}) VALUES (${row.map(mark).join(', ')}) ON CONFLICT (${shape.pk.map(quoteIdent).join(', ')}) ${onConflict}`;
  const delSql = (key: readonly SqlValue[]) => `DELETE FROM ${quoteIdent(table)} WHERE ${shape.pk.map((c, i) => `${quoteIdent(c)} IS ${mark(key[i] ?? null)}`).join(' AND ')}`;
  const statements = new Map<string, Database.Statement>();
  const prepared = (sql: string) => statements.get(sql) ?? statements.set(sql, db.prepare(sql)).get(sql)!;
  return () => {
    for (const row of upserts) prepared(upsertSql(row)).run(...bind(row));
    for (const key of deletes) prepared(delSql(key)).run(...bind(key));
  };
}
