import fs from 'node:fs';
import Database from 'better-sqlite3';
import { quoteIdent } from '../core/sqlite-util.js';
import { WbError } from '../core/errors.js';
import { diffSchemas, keyOrder, readSchema, schemaDiffIsEmpty, type SchemaDiff, type TableInfo } from './schema.js';
import { compareKeys, compareValues, keyToJson, sameValue, showRow, type KeyJson, type ShownValue } from './values.js';

/** Rows of one table that differ, as shown in a sample. */
export interface RowChange {
  change: 'added' | 'deleted' | 'changed';
  /** the row's key: primary key columns (or rowid) -> value */
  key: Record<string, ShownValue>;
  /** the row in `from` (deleted and changed rows) */
  before?: Record<string, ShownValue>;
  /** the row in `to` (added and changed rows) */
  after?: Record<string, ShownValue>;
  /** for a changed row: the columns whose values differ */
  columns_changed?: string[];
}

export interface TableDiff {
  table: string;
  kind: 'table' | 'virtual';
  /** the columns identifying rows (`rowid` when the table has no primary key) */
  key: string[];
  /** false when rows could not be compared (the key differs between the sides): see not_compared_because */
  compared: boolean;
  not_compared_because?: string;
  /** rows on each side; null on a page that continued from a cursor (only the sample is read then) */
  rows_from: number | null;
  rows_to: number | null;
  added: number | null;
  deleted: number | null;
  changed: number | null;
  /** differing rows in key order, at most `sample` of them */
  sample: RowChange[];
  /** pass as rows_cursor for the next rows of this table after the sample; null when the sample holds the last differing row */
  next_rows_cursor: string | null;
}

export interface DatabaseDiff {
  schema: SchemaDiff;
  /** tables with differing rows (or not comparable), in name order; tables that are the same are only counted */
  tables: TableDiff[];
  tables_same: number;
  /** every table name either side has (to tell a `tables` filter that names none) */
  names: string[];
}

export interface RowDiffOptions {
  /** differing rows kept per table (the counts always cover every row) */
  sample: number;
  tables?: string[] | undefined;
  /** continue one table after a key (from a next_rows_cursor): only its sample is read */
  after?: { table: string; key: KeyJson; keyValues: unknown[] } | undefined;
  /** makes a cursor for the next page after `key` */
  cursor(table: string, key: KeyJson): string;
  signal?: AbortSignal | undefined;
}

function open(file: string): Database.Database {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.defaultSafeIntegers(true);
  return db;
}

/**
 * Compares two copies of a database (files nobody writes: cached snapshot images or a hot copy):
 * the schema, then each table present on both sides row by row. Both sides are read in key order
 * and merged, one row of each in memory at a time, so memory does not grow with the tables.
 */
export function diffDatabaseFiles(fromFile: string, toFile: string, opts: RowDiffOptions): DatabaseDiff {
  const a = open(fromFile);
  const b = open(toFile);
  const pages = PageReader.pair(a, b, fromFile, toFile);
  try {
    const sa = readSchema(a);
    const sb = readSchema(b);
    const schema = diffSchemas(sa, sb);
    // SQLite's names are case-insensitive: "Tasks" names the table tasks.
    const wanted = (opts.after ? [opts.after.table] : opts.tables)?.map((n) => n.toLowerCase());
    const names = [...sa.tables.keys()].filter((n) => sb.tables.has(n) && (!wanted || wanted.includes(n.toLowerCase()))).sort();
    if (opts.after && names.length === 0) throw badCursor(`both sides have no table ${opts.after.table}`);
    const tables: TableDiff[] = [];
    let same = 0;
    for (const name of names) {
      opts.signal?.throwIfAborted();
      if (!opts.after && pages?.sameTable(name)) {
        same++;
        continue;
      }
      const d = diffTable(a, b, sa.tables.get(name)!, sb.tables.get(name)!, opts);
      if (d.compared && d.added === 0 && d.deleted === 0 && d.changed === 0 && d.sample.length === 0) same++;
      else tables.push(d);
    }
    return { schema: opts.after ? emptySchemaDiff() : schema, tables, tables_same: same, names: [...new Set([...sa.tables.keys(), ...sb.tables.keys()])] };
  } finally {
    pages?.close();
    a.close();
    b.close();
  }
}

/**
 * The fast path for a table nobody touched: both copies are page images (a snapshot's, or a hot
 * copy), so an unchanged table keeps the same pages with the same bytes. When its b-tree (root,
 * interior, leaf and overflow pages, from dbstat) has the same page numbers on both sides and
 * every one of those pages is byte-equal, its rows are equal and the merge is skipped. Any
 * difference falls back to comparing rows, so this can only save time, never change a result.
 */
class PageReader {
  private constructor(
    private readonly a: Database.Database,
    private readonly b: Database.Database,
    private readonly fa: number,
    private readonly fb: number,
    private readonly pageSize: number,
  ) {}

  static pair(a: Database.Database, b: Database.Database, fileA: string, fileB: string): PageReader | null {
    const size = (db: Database.Database) => Number(db.pragma('page_size', { simple: true }));
    // Pages still in a -wal file would not be in the main file's bytes.
    const walFree = (f: string) => !fs.existsSync(`${f}-wal`) || fs.statSync(`${f}-wal`).size === 0;
    try {
      if (size(a) !== size(b) || !walFree(fileA) || !walFree(fileB)) return null;
      a.prepare('SELECT 1 FROM dbstat LIMIT 1').all();
    } catch {
      return null; // no dbstat in this SQLite: rows are compared
    }
    return new PageReader(a, b, fs.openSync(fileA, 'r'), fs.openSync(fileB, 'r'), size(a));
  }

  private pages(db: Database.Database, table: string): number[] {
    return db.prepare('SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno').pluck().safeIntegers(false).all(table) as number[];
  }

  sameTable(table: string): boolean {
    const root = (db: Database.Database) => db.prepare("SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?").pluck().safeIntegers(false).get(table) as number | undefined;
    const ra = root(this.a);
    if (!ra || ra !== root(this.b)) return false;
    const pa = this.pages(this.a, table);
    const pb = this.pages(this.b, table);
    if (pa.length === 0 || pa.length !== pb.length || pa.some((p, i) => p !== pb[i])) return false;
    const x = Buffer.alloc(this.pageSize);
    const y = Buffer.alloc(this.pageSize);
    for (const p of pa) {
      const at = (p - 1) * this.pageSize;
      if (fs.readSync(this.fa, x, 0, this.pageSize, at) !== this.pageSize || fs.readSync(this.fb, y, 0, this.pageSize, at) !== this.pageSize) return false;
      if (!x.equals(y)) return false;
    }
    return true;
  }

  close(): void {
    fs.closeSync(this.fa);
    fs.closeSync(this.fb);
  }
}

function badCursor(why: string): WbError {
  return new WbError('invalid_input', `The rows_cursor is not one data_snapshot_diff returned for these snapshots: ${why}.`, 'Pass a next_rows_cursor from a table of an earlier diff result, or diff again without rows_cursor.');
}

function emptySchemaDiff(): SchemaDiff {
  return { tables_added: [], tables_removed: [], tables_changed: [], indexes_added: [], indexes_removed: [], indexes_changed: [], others_added: [], others_removed: [], others_changed: [] };
}

export { schemaDiffIsEmpty };

function count(db: Database.Database, table: string): number {
  return Number(db.prepare(`SELECT count(*) FROM ${quoteIdent(table)}`).pluck().get());
}

function rowsInKeyOrder(db: Database.Database, t: TableInfo, after: unknown[] | undefined): IterableIterator<unknown[]> {
  const keySel = t.key.map(quoteIdent).join(', ');
  const cols = t.columns.map((c) => quoteIdent(c.name)).join(', ');
  const where = after ? ` WHERE (${t.key.map((k) => `${quoteIdent(k)} COLLATE BINARY`).join(', ')}) > (${t.key.map(() => '?').join(', ')})` : '';
  const stmt = db.prepare(`SELECT ${keySel}, ${cols} FROM ${quoteIdent(t.name)}${where} ORDER BY ${keyOrder(t.key)}`).raw(true);
  return (after ? stmt.iterate(...after) : stmt.iterate()) as IterableIterator<unknown[]>;
}

/** Whether some row of `t` has a NULL in a primary key column (a rowid table allows it, except for an INTEGER PRIMARY KEY). */
function hasNullKey(db: Database.Database, t: TableInfo): boolean {
  return db.prepare(`SELECT 1 FROM ${quoteIdent(t.name)} WHERE ${t.key.map((k) => `${quoteIdent(k)} IS NULL`).join(' OR ')} LIMIT 1`).get() !== undefined;
}

/**
 * The key rows are matched by. A primary key identifies a row only when it holds no NULL: a rowid
 * table with another primary key than INTEGER PRIMARY KEY accepts any number of rows with NULL in
 * it, which a merge by key would pair at random (changes reported that never happened). Such a
 * table is matched by its rowid instead, on both sides.
 */
function matchingKey(a: Database.Database, b: Database.Database, ta: TableInfo, tb: TableInfo): { ta: TableInfo; tb: TableInfo } {
  if (ta.kind !== 'table' || ta.keyIsRowid || tb.keyIsRowid || ta.withoutRowid || tb.withoutRowid) return { ta, tb };
  if (ta.key.join('\u0000') !== tb.key.join('\u0000')) return { ta, tb };
  if (!hasNullKey(a, ta) && !hasNullKey(b, tb)) return { ta, tb };
  const names = new Set([...ta.columns, ...tb.columns].map((c) => c.name.toLowerCase()));
  const rowid = ['rowid', '_rowid_', 'oid'].find((n) => !names.has(n));
  if (!rowid) return { ta, tb };
  return { ta: { ...ta, key: [rowid], keyIsRowid: true }, tb: { ...tb, key: [rowid], keyIsRowid: true } };
}

function diffTable(a: Database.Database, b: Database.Database, ta0: TableInfo, tb0: TableInfo, opts: RowDiffOptions): TableDiff {
  const { ta, tb } = matchingKey(a, b, ta0, tb0);
  if (opts.after && opts.after.keyValues.length !== ta.key.length) throw badCursor(`its key has ${opts.after.keyValues.length} value(s), the rows of ${ta.name} are identified by ${ta.key.length} (${ta.key.join(', ')})`);
  const base = { table: ta.name, kind: tb.kind, key: tb.key };
  const paging = opts.after !== undefined;
  if (ta.key.join('\u0000') !== tb.key.join('\u0000')) {
    return {
      ...base,
      compared: false,
      not_compared_because: `the rows are identified by (${ta.key.join(', ')}) in one and (${tb.key.join(', ')}) in the other: the primary key changed`,
      rows_from: count(a, ta.name),
      rows_to: count(b, tb.name),
      added: null,
      deleted: null,
      changed: null,
      sample: [],
      next_rows_cursor: null,
    };
  }
  const n = ta.key.length;
  const colsA = ta.columns.map((c) => c.name);
  const colsB = tb.columns.map((c) => c.name);
  // Changed means a differing value in a column both sides have (added or removed columns are schema changes).
  const common = colsA.filter((c) => colsB.includes(c)).map((c) => [colsA.indexOf(c), colsB.indexOf(c), c] as const);
  const ia0 = common.map(([i]) => n + i);
  const ib0 = common.map(([, j]) => n + j);
  // Equal rows are the common case: checked without allocating, the differing columns listed only when one differs.
  const sameRow = (x: unknown[], y: unknown[]): boolean => {
    for (let k = 0; k < ia0.length; k++) if (!sameValue(x[ia0[k]!], y[ib0[k]!])) return false;
    return true;
  };
  const keyCmp = n === 1 ? (x: unknown[], y: unknown[]) => compareValues(x[0], y[0]) : (x: unknown[], y: unknown[]) => compareKeys(x.slice(0, n), y.slice(0, n));
  const ia = rowsInKeyOrder(a, ta, opts.after?.keyValues);
  const ib = rowsInKeyOrder(b, tb, opts.after?.keyValues);
  let added = 0;
  let deleted = 0;
  let changed = 0;
  let rowsA = 0;
  let rowsB = 0;
  const sample: RowChange[] = [];
  let lastSampled: unknown[] | null = null;
  let more = false;
  const keyOf = (row: unknown[]) => row.slice(0, n);
  const keyShown = (row: unknown[]) => showRow(ta.key, row.slice(0, n));
  // Returns false when a page is full and the rest need not be read.
  const note = (c: RowChange, key: unknown[]): boolean => {
    if (sample.length < opts.sample) {
      sample.push(c);
      lastSampled = key;
      return true;
    }
    more = true;
    return !paging;
  };
  let ra = ia.next();
  let rb = ib.next();
  let steps = 0;
  try {
    while (!ra.done || !rb.done) {
      if (++steps % 65536 === 0) opts.signal?.throwIfAborted();
      const rowA = ra.done ? null : ra.value;
      const rowB = rb.done ? null : rb.value;
      const cmp = rowA && rowB ? keyCmp(rowA, rowB) : rowA ? -1 : 1;
      if (cmp < 0) {
        deleted++;
        rowsA++;
        if (!note({ change: 'deleted', key: keyShown(rowA!), before: showRow(colsA, rowA!.slice(n)) }, keyOf(rowA!))) break;
        ra = ia.next();
      } else if (cmp > 0) {
        added++;
        rowsB++;
        if (!note({ change: 'added', key: keyShown(rowB!), after: showRow(colsB, rowB!.slice(n)) }, keyOf(rowB!))) break;
        rb = ib.next();
      } else {
        rowsA++;
        rowsB++;
        if (!sameRow(rowA!, rowB!)) {
          const differing = common.filter(([i, j]) => !sameValue(rowA![n + i], rowB![n + j])).map(([, , c]) => c);
          changed++;
          if (!note({ change: 'changed', key: keyShown(rowA!), before: showRow(colsA, rowA!.slice(n)), after: showRow(colsB, rowB!.slice(n)), columns_changed: differing }, keyOf(rowA!))) break;
        }
        ra = ia.next();
        rb = ib.next();
      }
    }
  } finally {
    ia.return?.();
    ib.return?.();
  }
  const next = more && lastSampled ? opts.cursor(ta.name, keyToJson(lastSampled)) : null;
  if (paging) return { ...base, compared: true, rows_from: null, rows_to: null, added: null, deleted: null, changed: null, sample, next_rows_cursor: next };
  return { ...base, compared: true, rows_from: rowsA, rows_to: rowsB, added, deleted, changed, sample, next_rows_cursor: next };
}
