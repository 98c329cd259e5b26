import type Database from 'better-sqlite3';
import { quoteIdent } from '../core/sqlite-util.js';

/** A column as PRAGMA table_info gives it. */
export interface ColumnInfo {
  name: string;
  type: string;
  notnull: boolean;
  default: string | null;
  /** position in the primary key (1-based), 0 when not in it */
  pk: number;
}

/** One table the diff compares: ordinary tables and virtual tables (an FTS index by its documents); shadow tables left out. */
export interface TableInfo {
  name: string;
  /** 'virtual': an FTS or R*Tree table, compared by rowid through the table itself (its shadow tables are never compared) */
  kind: 'table' | 'virtual';
  sql: string;
  columns: ColumnInfo[];
  withoutRowid: boolean;
  /** the columns that identify a row: the primary key's, or a rowid name when there is no primary key */
  key: string[];
  /** true when `key` is the rowid (no declared primary key) */
  keyIsRowid: boolean;
}

export interface DatabaseSchema {
  tables: Map<string, TableInfo>;
  /** indexes (named ones; automatic indexes belong to their table's declaration), views and triggers: name -> sql */
  indexes: Map<string, { table: string; sql: string }>;
  others: Map<string, { type: string; sql: string }>;
}

/**
 * The schema of a database: ordinary and virtual tables with each one's key (shadow tables left
 * out: they are a virtual table's storage), plus its indexes, views and triggers.
 */
export function readSchema(db: Database.Database): DatabaseSchema {
  const rows = db
    .prepare("SELECT type, name, tbl_name AS tbl, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
    .safeIntegers(false)
    .all() as Array<{ type: string; name: string; tbl: string; sql: string | null }>;
  const listed = new Map<string, { type: string; wr: number }>();
  for (const t of db.prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'").safeIntegers(false).all() as Array<{ name: string; type: string; wr: number }>) listed.set(t.name, t);
  const tables = new Map<string, TableInfo>();
  const indexes = new Map<string, { table: string; sql: string }>();
  const others = new Map<string, { type: string; sql: string }>();
  for (const r of rows) {
    if (r.type === 'table') {
      const info = listed.get(r.name);
      // A virtual table's shadow tables are its storage, not rows of the user's: the virtual table
      // itself is compared (an FTS index by its documents), as a restore's row counts fold them (restore/compare.ts).
      if (!r.sql || info?.type === 'shadow') continue;
      const virtual = /^CREATE\s+VIRTUAL/i.test(r.sql);
      let columns: ColumnInfo[];
      try {
        columns = (db.prepare('SELECT name, type, "notnull" AS nn, dflt_value AS dflt, pk FROM pragma_table_info(?)').safeIntegers(false).all(r.name) as Array<{ name: string; type: string; nn: number; dflt: string | null; pk: number }>).map((c) => ({
          name: c.name,
          type: c.type,
          notnull: c.nn === 1,
          default: c.dflt,
          pk: c.pk,
        }));
      } catch {
        // A virtual table of a module this SQLite lacks: only its declaration is compared.
        others.set(r.name, { type: 'virtual table', sql: r.sql });
        continue;
      }
      const pk = virtual ? [] : columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
      const rowidName = ['rowid', '_rowid_', 'oid'].find((n) => !columns.some((c) => c.name.toLowerCase() === n)) ?? 'rowid';
      tables.set(r.name, {
        name: r.name,
        kind: virtual ? 'virtual' : 'table',
        sql: r.sql,
        columns,
        withoutRowid: info?.wr === 1,
        key: pk.length ? pk : [rowidName],
        keyIsRowid: pk.length === 0,
      });
    } else if (r.type === 'index') {
      if (r.sql) indexes.set(r.name, { table: r.tbl, sql: r.sql });
    } else if (r.sql) {
      others.set(r.name, { type: r.type, sql: r.sql });
    }
  }
  return { tables, indexes, others };
}

/** `"a" COLLATE BINARY, "b" COLLATE BINARY`: the order compareKeys (values.ts) merges in. */
export function keyOrder(key: readonly string[]): string {
  return key.map((k) => `${quoteIdent(k)} COLLATE BINARY`).join(', ');
}

export interface ColumnChange {
  column: string;
  from: Omit<ColumnInfo, 'name'>;
  to: Omit<ColumnInfo, 'name'>;
}

export interface TableSchemaChange {
  table: string;
  columns_added: string[];
  columns_removed: string[];
  columns_changed: ColumnChange[];
  /** the key identifying rows differs, so rows are not compared */
  key_changed: boolean;
  /** the CREATE statement differs (also for changes not seen in the columns, e.g. a constraint) */
  sql_changed: boolean;
}

export interface SchemaDiff {
  tables_added: string[];
  tables_removed: string[];
  tables_changed: TableSchemaChange[];
  indexes_added: string[];
  indexes_removed: string[];
  indexes_changed: string[];
  /** views, triggers and virtual tables: "<type> <name>" */
  others_added: string[];
  others_removed: string[];
  others_changed: string[];
}

function setDiff<V>(a: Map<string, V>, b: Map<string, V>, same: (x: V, y: V) => boolean): { added: string[]; removed: string[]; changed: string[] } {
  const added = [...b.keys()].filter((k) => !a.has(k));
  const removed = [...a.keys()].filter((k) => !b.has(k));
  const changed = [...a.keys()].filter((k) => b.has(k) && !same(a.get(k)!, b.get(k)!));
  return { added, removed, changed };
}

/** What changed in the schema from `a` to `b`. */
export function diffSchemas(a: DatabaseSchema, b: DatabaseSchema): SchemaDiff {
  const t = setDiff(a.tables, b.tables, () => true);
  const tablesChanged: TableSchemaChange[] = [];
  for (const [name, ta] of a.tables) {
    const tb = b.tables.get(name);
    if (!tb) continue;
    const ca = new Map(ta.columns.map((c) => [c.name, c]));
    const cb = new Map(tb.columns.map((c) => [c.name, c]));
    const strip = ({ name: _n, ...rest }: ColumnInfo) => rest;
    const changedCols: ColumnChange[] = [];
    for (const [n, c] of ca) {
      const d = cb.get(n);
      if (d && (c.type !== d.type || c.notnull !== d.notnull || c.default !== d.default || c.pk !== d.pk)) changedCols.push({ column: n, from: strip(c), to: strip(d) });
    }
    const change: TableSchemaChange = {
      table: name,
      columns_added: [...cb.keys()].filter((n) => !ca.has(n)),
      columns_removed: [...ca.keys()].filter((n) => !cb.has(n)),
      columns_changed: changedCols,
      key_changed: ta.key.join('\u0000') !== tb.key.join('\u0000'),
      sql_changed: ta.sql !== tb.sql,
    };
    if (change.columns_added.length || change.columns_removed.length || changedCols.length || change.key_changed || change.sql_changed) tablesChanged.push(change);
  }
  const i = setDiff(a.indexes, b.indexes, (x, y) => x.sql === y.sql && x.table === y.table);
  const o = setDiff(a.others, b.others, (x, y) => x.sql === y.sql && x.type === y.type);
  const label = (m: DatabaseSchema['others']) => (n: string) => `${m.get(n)!.type} ${n}`;
  return {
    tables_added: t.added,
    tables_removed: t.removed,
    tables_changed: tablesChanged,
    indexes_added: i.added,
    indexes_removed: i.removed,
    indexes_changed: i.changed,
    others_added: o.added.map(label(b.others)),
    others_removed: o.removed.map(label(a.others)),
    others_changed: o.changed.map(label(b.others)),
  };
}

export function schemaDiffIsEmpty(d: SchemaDiff): boolean {
  return Object.values(d).every((v) => (v as unknown[]).length === 0);
}
