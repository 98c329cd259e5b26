import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { WbError } from '../core/errors.js';
import { quoteIdent } from '../core/sqlite-util.js';

/**
 * Rows of one table as row recovery sees them: identified by the primary key (or the rowid of a
 * table without one), read with their exact storage classes (integers as bigint, blobs as bytes),
 * so a row put back is the row the snapshot held, value for value.
 */

/** A stored value as SQLite returns it with safe integers on. */
export type SqlValue = null | bigint | number | string | Buffer;

/** One foreign key of a table, its columns resolved (the parent's primary key when the key names none). */
export interface ForeignKey {
  /** the referencing table */
  child: string;
  parent: string;
  from: string[];
  to: string[];
  on_delete: string;
}

export interface TableShape {
  name: string;
  /** the columns a row is written with (generated and hidden columns left out), in table order */
  columns: string[];
  /** the primary key's columns, or null: the row is identified by its rowid */
  key: string[] | null;
  /** foreign keys of this table (to its parents) */
  parents: ForeignKey[];
  /** how the rowid is named in SQL: rowid, or _rowid_ / oid when a column is named rowid */
  rowid: string;
}

/** A row of a table: its identity (key values, or [rowid]) and its column values, in shape.columns order. */
export interface Row {
  table: string;
  id: SqlValue[];
  values: SqlValue[];
}

/** The key columns' names as a person reads them: the primary key, or "rowid". */
export function keyNames(shape: TableShape): string[] {
  return shape.key ?? [shape.rowid];
}

/** The table's shape in `db`, or null when there is no such ordinary table. */
export function tableShape(db: Database.Database, table: string): TableShape | null {
  const row = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?").get(table) as { sql: string | null } | undefined;
  if (!row) return null;
  if (/^\s*CREATE\s+VIRTUAL\b/i.test(row.sql ?? '')) return null;
  const info = db.prepare(`PRAGMA table_xinfo(${quoteIdent(table)})`).all() as Array<{ name: string; pk: number; hidden: number }>;
  const columns = info.filter((c) => c.hidden === 0).map((c) => c.name);
  const pk = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  const fks = db.prepare(`PRAGMA foreign_key_list(${quoteIdent(table)})`).all() as Array<{ id: number; seq: number; table: string; from: string; to: string | null; on_delete: string }>;
  const byId = new Map<number, ForeignKey>();
  for (const f of fks.sort((a, b) => a.id - b.id || a.seq - b.seq)) {
    const fk = byId.get(f.id) ?? { child: table, parent: f.table, from: [], to: [], on_delete: f.on_delete };
    fk.from.push(f.from);
    if (f.to !== null) fk.to.push(f.to);
    byId.set(f.id, fk);
  }
  const parents = [...byId.values()].map((fk) => {
    if (fk.to.length === fk.from.length) return fk;
    // REFERENCES parent (no columns): the parent's primary key.
    const parentPk = (db.prepare(`PRAGMA table_info(${quoteIdent(fk.parent)})`).all() as Array<{ name: string; pk: number }>).filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    return { ...fk, to: parentPk };
  });
  // A column may be named rowid: the rowid is then reached by another of its names (as SQLite does).
  const rowid = ['rowid', '_rowid_', 'oid'].find((n) => !info.some((c) => c.name.toLowerCase() === n));
  if (!rowid && !pk.length) {
    throw new WbError('restore_refused', `Table ${table} has no primary key and columns named rowid, _rowid_ and oid, so its rows cannot be identified. Nothing was changed.`, 'Restore the whole database with data_restore.');
  }
  return { name: table, columns, key: pk.length ? pk : null, parents, rowid: rowid ?? 'rowid' };
}

/** Every ordinary table's shape, by name. */
export function allShapes(db: Database.Database): Map<string, TableShape> {
  const names = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").pluck().all() as string[];
  const out = new Map<string, TableShape>();
  for (const n of names) {
    const s = tableShape(db, n);
    if (s) out.set(n, s);
  }
  return out;
}

/** The foreign keys of other tables (and this one) that point at `table`. */
export function childKeys(shapes: ReadonlyMap<string, TableShape>, table: string): ForeignKey[] {
  return [...shapes.values()].flatMap((s) => s.parents.filter((fk) => fk.parent === table));
}

function idExprs(shape: TableShape): string {
  return shape.key ? shape.key.map(quoteIdent).join(', ') : shape.rowid;
}

function selectList(shape: TableShape): string {
  return `${idExprs(shape)}, ${shape.columns.map(quoteIdent).join(', ')}`;
}

function toRow(shape: TableShape, raw: SqlValue[]): Row {
  const n = shape.key ? shape.key.length : 1;
  return { table: shape.name, id: raw.slice(0, n), values: raw.slice(n) };
}

/**
 * Statements of one connection prepared once each, so a closure over thousands of rows does not
 * re-prepare its queries; `configure` runs once on each new statement.
 */
class StatementCache {
  private readonly stmts = new Map<string, Database.Statement>();
  constructor(
    private readonly db: Database.Database,
    private readonly configure: (s: Database.Statement) => void = () => {},
  ) {}

  get(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.configure(s);
      this.stmts.set(sql, s);
    }
    return s;
  }
}

/** Reads rows of one connection: exact values (64-bit integers as BigInt), rows as arrays. */
export class RowReader {
  private readonly cache: StatementCache;
  constructor(readonly db: Database.Database) {
    this.cache = new StatementCache(db, (s) => {
      s.safeIntegers(true);
      if (s.reader) s.raw(true);
    });
  }

  private stmt(sql: string): Database.Statement {
    return this.cache.get(sql);
  }

  /** The row with this identity, or null. */
  byId(shape: TableShape, id: readonly SqlValue[]): Row | null {
    const where = shape.key ? shape.key.map((c) => `${quoteIdent(c)} IS ?`).join(' AND ') : `${shape.rowid} IS ?`;
    const raw = this.stmt(`SELECT ${selectList(shape)} FROM ${quoteIdent(shape.name)} WHERE ${where}`).get(...id) as SqlValue[] | undefined;
    return raw ? toRow(shape, raw) : null;
  }

  /** Rows whose `cols` equal `values` (a foreign key's columns), at most `limit`. */
  byColumns(shape: TableShape, cols: readonly string[], values: readonly SqlValue[], limit = 1_000_000): Row[] {
    const where = cols.map((c) => `${quoteIdent(c)} = ?`).join(' AND ');
    return (this.stmt(`SELECT ${selectList(shape)} FROM ${quoteIdent(shape.name)} WHERE ${where} LIMIT ${limit}`).all(...values) as SqlValue[][]).map((r) => toRow(shape, r));
  }

  /** Whether a row with these `cols` = `values` exists. */
  exists(shape: TableShape, cols: readonly string[], values: readonly SqlValue[]): boolean {
    const where = cols.map((c) => `${quoteIdent(c)} = ?`).join(' AND ');
    return this.stmt(`SELECT 1 FROM ${quoteIdent(shape.name)} WHERE ${where} LIMIT 1`).get(...values) !== undefined;
  }

  /** The rows a checked plain expression selects (see checkPlainExpression), at most `limit` + 1. */
  byWhere(shape: TableShape, where: string, limit: number): Row[] {
    // The query's guard too (inspect/query-run): the statement must only read.
    const probe = this.db.prepare(`SELECT 1 FROM ${quoteIdent(shape.name)} WHERE (${where})`);
    if (!probe.readonly || !probe.reader) throw new WbError('invalid_input', 'The where expression was refused: the statement it makes would not only read.');
    return (this.stmt(`SELECT ${selectList(shape)} FROM ${quoteIdent(shape.name)} WHERE (${where}) ORDER BY ${idExprs(shape)} LIMIT ${limit + 1}`).all() as SqlValue[][]).map((r) => toRow(shape, r));
  }
}

/** The values of a row's columns `cols` (a foreign key's, or a key's). */
export function columnValues(shape: TableShape, row: Row, cols: readonly string[]): SqlValue[] {
  return cols.map((c) => {
    const i = shape.columns.indexOf(c);
    if (i >= 0) return row.values[i]!;
    const k = (shape.key ?? []).indexOf(c);
    if (k >= 0) return row.id[k]!;
    throw new WbError('restore_refused', `Table ${shape.name} has no column ${c}, which a foreign key names.`, 'Check the schema of the database.');
  });
}

/** A value's exact text (storage class and value): equal texts are equal values. */
export function valueKey(v: SqlValue): string {
  if (v === null) return 'n';
  if (typeof v === 'bigint') return `i${v}`;
  if (typeof v === 'number') return Number.isInteger(v) && Object.is(v, v) ? `r${v.toFixed(1)}` : `r${v}`;
  if (typeof v === 'string') return `t${v}`;
  return `b${v.toString('hex')}`;
}

/** A row identity's exact text: "table" + key values. */
export function rowKey(table: string, id: readonly SqlValue[]): string {
  return JSON.stringify([table, ...id.map(valueKey)]);
}

/** Whether two rows hold exactly the same values (storage classes included). */
export function sameValues(a: Row, b: Row): boolean {
  return a.values.length === b.values.length && a.values.every((v, i) => valueKey(v) === valueKey(b.values[i]!));
}

/** sha256 of rows, for binding a consent to exactly these rows and values. */
export function hashRows(rows: readonly Row[]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(`${rowKey(r.table, r.id)}\u0000${r.values.map(valueKey).join('\u0001')}\n`);
  return h.digest('hex');
}

/** Longest text shown of one value in a sample (the rows themselves are never cut). */
const SHOWN_TEXT = 200;

/** A value as JSON for a person: integers beyond 2^53 and blobs as text, long text cut. */
export type ShownValue = string | number | null;
export function showValue(v: SqlValue): ShownValue {
  if (v === null) return null;
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return v.length > SHOWN_TEXT ? `${v.slice(0, SHOWN_TEXT)}… (${v.length} characters)` : v;
  return `x'${v.subarray(0, 32).toString('hex')}'${v.length > 32 ? `… (${v.length} bytes)` : ''}`;
}

/** The row as {column: value} for a sample. */
export function showRow(shape: TableShape, row: Row): Record<string, ShownValue> {
  const out: Record<string, ShownValue> = {};
  if (!shape.key) out[shape.rowid] = showValue(row.id[0]!);
  shape.columns.forEach((c, i) => (out[c] = showValue(row.values[i]!)));
  return out;
}

/** The key as a person reads it: one value, or the list of a composite key's. */
export function showKey(id: readonly SqlValue[]): ShownValue | ShownValue[] {
  return id.length === 1 ? showValue(id[0]!) : id.map(showValue);
}

/**
 * Writes a snapshot row into the live table: INSERT with every column (and the rowid of a table
 * without a primary key, so the row keeps its identity), or UPDATE of the live row's values.
 * Both say OR ABORT: it overrides a table's own ON CONFLICT REPLACE, which would otherwise
 * silently delete a live row holding the same unique value.
 */
export class RowWriter {
  private readonly cache: StatementCache;
  constructor(readonly db: Database.Database) {
    this.cache = new StatementCache(db);
  }

  private stmt(sql: string): Database.Statement {
    return this.cache.get(sql);
  }

  insert(shape: TableShape, row: Row): void {
    const cols = shape.key ? shape.columns.map(quoteIdent) : [shape.rowid, ...shape.columns.map(quoteIdent)];
    const values = shape.key ? row.values : [row.id[0]!, ...row.values];
    this.stmt(`INSERT OR ABORT INTO ${quoteIdent(shape.name)} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...values);
  }

  update(shape: TableShape, row: Row): void {
    const where = shape.key ? shape.key.map((c) => `${quoteIdent(c)} IS ?`).join(' AND ') : `${shape.rowid} IS ?`;
    this.stmt(`UPDATE OR ABORT ${quoteIdent(shape.name)} SET ${shape.columns.map((c) => `${quoteIdent(c)} = ?`).join(', ')} WHERE ${where}`).run(...row.values, ...row.id);
  }
}

/** Words an expression may not contain: statements, schema and file access, subqueries. */
const FORBIDDEN_WORDS = ['select', 'with', 'attach', 'detach', 'pragma', 'insert', 'update', 'delete', 'drop', 'create', 'alter', 'replace', 'vacuum', 'reindex', 'analyze', 'begin', 'commit', 'rollback', 'savepoint', 'release', 'union', 'except', 'intersect', 'values', 'load_extension', 'readfile', 'writefile', 'edit', 'fts3_tokenizer'];
export const WHERE_MAX_CHARS = 2_000;

/**
 * Refuses anything but a plain expression for `where`: no statement separator or comment, balanced
 * parentheses (it cannot close the WHERE it is put in), and none of the words of statements,
 * subqueries, schema changes or file access outside quoted text. The expression is then evaluated
 * on the snapshot's rebuilt copy only, opened read-only.
 * @throws WbError `invalid_input` saying what was refused
 */
export function checkPlainExpression(where: string): void {
  const refuse = (why: string) => {
    throw new WbError('invalid_input', `The where expression was refused: ${why}. It must be a plain expression over the table's columns, such as project_id = 3 AND done = 0.`, 'Pass a plain expression (no statements, subqueries, comments or semicolons), or choose the rows with keys.');
  };
  if (where.length > WHERE_MAX_CHARS) refuse(`it is longer than ${WHERE_MAX_CHARS} characters`);
  if (!where.trim()) refuse('it is empty');
  let depth = 0;
  let bare = '';
  const quoted = new Map<string, string>();
  for (let i = 0; i < where.length; i++) {
    const c = where[i]!;
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      for (; j < where.length; j++) {
        if (where[j] === close) {
          if (close !== ']' && where[j + 1] === close) j++;
          else break;
        }
      }
      if (j >= where.length) refuse('a quote is not closed');
      // A quoted identifier is a column name, never a statement word ("update" is a fine column),
      // so its text is not looked at; but it must not name a function ("load_extension"(...)):
      // it stands as q_<n>, which no allowed function is called, so "name"( is refused below.
      if (c !== "'") quoted.set(`q_${i}`, `"${where.slice(i + 1, j)}"`);
      bare += c === "'" ? ' ? ' : ` q_${i} `;
      i = j;
      continue;
    }
    if (c === ';') refuse('it contains a semicolon');
    if ((c === '-' && where[i + 1] === '-') || (c === '/' && where[i + 1] === '*')) refuse('it contains a comment');
    if (c === '(') depth++;
    if (c === ')' && --depth < 0) refuse('a parenthesis closes one it did not open');
    bare += c;
  }
  if (depth !== 0) refuse('its parentheses are not balanced');
  const words = new Set(bare.toLowerCase().match(/[a-z_][a-z0-9_$]*/g) ?? []);
  const bad = FORBIDDEN_WORDS.filter((w) => words.has(w));
  if (bad.length) refuse(`it uses ${bad.map((w) => w.toUpperCase()).join(', ')}`);
  // Functions: only cheap scalar ones (no zeroblob, randomblob, no extension's), so the expression stays fast row by row.
  const calls = [...bare.toLowerCase().matchAll(/([a-z_][a-z0-9_$]*)\s*\(/g)].map((m) => m[1]!).filter((f) => !SQL_WORDS_BEFORE_PARENS.has(f));
  const unknown = [...new Set(calls.filter((f) => !PLAIN_FUNCTIONS.has(f)))];
  if (unknown.length) refuse(`it calls ${unknown.map((f) => quoted.get(f) ?? f).join(', ')}, which a where expression may not (allowed: ${[...PLAIN_FUNCTIONS].join(', ')})`);
}

/** Words that may stand before a parenthesis in an expression without being a function call. */
const SQL_WORDS_BEFORE_PARENS = new Set(['in', 'and', 'or', 'not', 'is', 'like', 'glob', 'between', 'when', 'then', 'else', 'case', 'escape', 'as', 'collate', 'exists', 'null']);
/** Scalar functions a where expression may call. */
const PLAIN_FUNCTIONS = new Set(['abs', 'cast', 'coalesce', 'ifnull', 'iif', 'instr', 'length', 'lower', 'upper', 'ltrim', 'rtrim', 'trim', 'nullif', 'round', 'substr', 'substring', 'typeof', 'date', 'time', 'datetime', 'julianday', 'strftime', 'unixepoch', 'json_extract', 'json_type', 'json_valid', 'min', 'max', 'likely', 'unlikely']);

/**
 * Watches, on one connection inside the recovery's transaction, what the live database's own
 * triggers do while the rows are written: TEMP triggers (kept in the connection's temp schema,
 * never in the live file, gone when it closes) count the rows deleted and updated in every
 * ordinary table. A recovery only inserts rows and updates the ones it names, so any delete, or
 * more updates than it made, came from a trigger of the database.
 */
export class TriggerWatch {
  private readonly startChanges: number;
  private constructor(private readonly db: Database.Database) {
    this.startChanges = TriggerWatch.totalChanges(db);
  }

  private static totalChanges(db: Database.Database): number {
    return Number(db.prepare('SELECT total_changes()').pluck().get());
  }

  /** Installs the watch; call before the first write. */
  static start(db: Database.Database): TriggerWatch {
    // Shadow tables (an FTS index's storage) are rewritten by their module: not the user's rows.
    const tables = db.prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all() as string[];
    db.exec('CREATE TEMP TABLE IF NOT EXISTS wb_recover_effects (tbl TEXT NOT NULL, op TEXT NOT NULL)');
    db.exec('DELETE FROM temp.wb_recover_effects');
    tables.forEach((t, i) => {
      const lit = `'${t.replace(/'/g, "''")}'`;
      db.exec(`CREATE TEMP TRIGGER IF NOT EXISTS wb_recover_del_${i} AFTER DELETE ON main.${quoteIdent(t)} BEGIN INSERT INTO temp.wb_recover_effects VALUES (${lit}, 'delete'); END`);
      db.exec(`CREATE TEMP TRIGGER IF NOT EXISTS wb_recover_upd_${i} AFTER UPDATE ON main.${quoteIdent(t)} BEGIN INSERT INTO temp.wb_recover_effects VALUES (${lit}, 'update'); END`);
    });
    return new TriggerWatch(db);
  }

  /**
   * What the triggers did beyond the recovery's own `writes` (inserts and updates).
   * @returns deleted: table -> rows deleted; extraUpdates: rows updated beyond the recovery's own; otherChanges: other rows inserted (e.g. an audit log or a full-text index kept by triggers)
   */
  effects(writes: number, updates: number): { deleted: Map<string, number>; extraUpdates: number; otherChanges: number } {
    const rows = this.db.prepare('SELECT tbl, op, count(*) AS n FROM temp.wb_recover_effects GROUP BY tbl, op').all() as Array<{ tbl: string; op: string; n: number }>;
    const deleted = new Map<string, number>();
    let updated = 0;
    let logged = 0;
    for (const r of rows) {
      logged += r.n;
      if (r.op === 'delete') deleted.set(r.tbl, r.n);
      else updated += r.n;
    }
    const total = TriggerWatch.totalChanges(this.db) - this.startChanges - logged;
    return { deleted, extraUpdates: Math.max(0, updated - updates), otherChanges: Math.max(0, total - writes - Math.max(0, updated - updates) - [...deleted.values()].reduce((a, b) => a + b, 0)) };
  }
}
