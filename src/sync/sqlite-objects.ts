/**
 * What a database holds, as github-sync must carry it: which tables have content to mirror and how
 * (rowid, virtual table kind), which schema statements can be re-created on another machine, and
 * what cannot be carried (refused, with the reason). Reads only.
 */
import Database from 'better-sqlite3';
import { quoteIdent } from '../core/sqlite-util.js';

/** A table whose rows the mirror carries (an ordinary table, or a virtual table re-filled through itself). */
export interface CarriedTable {
  name: string;
  /** the columns that hold data, in table order: generated columns (recomputed) and a virtual table's hidden columns left out */
  columns: string[];
  /** per column: a whole-number REAL would come back as INTEGER unless written as {"$real": …} (affinity other than REAL) */
  tagReal: boolean[];
  pk: string[];
  /** ORDER BY for a stable file: primary key, else rowid, else every column */
  orderBy: string;
  /**
   * How SQL names the rowid when the mirror must carry it (rowid tables without an INTEGER PRIMARY
   * KEY, FTS and geopoly tables); null when the rowid is a column, the table has none (WITHOUT
   * ROWID), or every name for it (rowid, _rowid_, oid) is taken by a column.
   */
  rowid: string | null;
  /** an SQL expression naming one row, to re-read it: the rowid or INTEGER PRIMARY KEY; null for WITHOUT ROWID */
  rowKey: string | null;
  /** the module of a virtual table; null for an ordinary table */
  module: string | null;
}

/**
 * Everything the sync steps need to know about one table (tableShape): what the mirror carries
 * (CarriedTable), what kind of table it is, and how an INSERT can set its rowid.
 */
export interface TableShape extends CarriedTable {
  /** pragma_table_list's type: an ordinary table, a virtual table's shadow table, or a virtual table */
  kind: 'table' | 'shadow' | 'virtual';
  withoutRowid: boolean;
  /** how an INSERT sets the rowid: rowid, _rowid_ or oid, the first no column (hidden ones included) takes; null for WITHOUT ROWID or when all are taken */
  rowidName: string | null;
}

/** A virtual table whose index is rebuilt from its external content table on import (nothing of its own is mirrored). */
export interface RebuiltTable {
  name: string;
  module: string;
}

export interface Refusal {
  table: string;
  reason: string;
}

export interface DatabaseObjects {
  carried: CarriedTable[];
  rebuilt: RebuiltTable[];
  refused: Refusal[];
  /** every CREATE statement the importer can run, in a stable order (tables and virtual tables, indexes, views, triggers); shadow tables left out */
  schemaSql: string;
  /** FTS5 settings made with `INSERT INTO t(t, rank) VALUES(key, value)` (rank, automerge, …), per table, to re-apply on import */
  fts5Config: Record<string, Array<[string, unknown]>>;
}

type Affinity = 'INTEGER' | 'TEXT' | 'BLOB' | 'REAL' | 'NUMERIC';

/** SQLite's affinity rules (datatype3.html §3.1), in their order. */
export function affinityOf(declared: string): Affinity {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'INTEGER';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'TEXT';
  if (t.includes('BLOB') || t.trim() === '') return 'BLOB';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'REAL';
  return 'NUMERIC';
}

interface VirtualDecl {
  module: string;
  args: string[];
}

/** Skip one identifier token (quoted "…", `…`, […], '…', or bare) from `i`; returns the index after it. */
function skipIdentifier(sql: string, i: number): number {
  const open = sql[i];
  const close = open === '"' ? '"' : open === '`' ? '`' : open === '[' ? ']' : open === "'" ? "'" : null;
  if (!close) {
    while (i < sql.length && /[^\s.(]/.test(sql[i]!)) i++;
    return i;
  }
  for (i++; i < sql.length; i++) {
    if (sql[i] === close) {
      if (close !== ']' && sql[i + 1] === close) i++;
      else return i + 1;
    }
  }
  return i;
}

/** Split a module argument list at top-level commas (quotes and parentheses respected). */
function splitArgs(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === '`' || c === '[') {
      i = skipIdentifier(text, i) - 1;
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start).trim();
  if (last || out.length) out.push(last);
  return out;
}

/** `CREATE VIRTUAL TABLE name USING module(args)` -> module (lower case) and its arguments; null when it does not parse. */
export function parseVirtualTable(sql: string): VirtualDecl | null {
  const head = /^\s*CREATE\s+VIRTUAL\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?/i.exec(sql);
  if (!head) return null;
  let i = skipIdentifier(sql, head[0].length);
  if (sql[i] === '.') i = skipIdentifier(sql, i + 1);
  const rest = /^\s*USING\s+([A-Za-z0-9_]+)\s*(?:\(([\s\S]*)\))?\s*$/i.exec(sql.slice(i));
  if (!rest) return null;
  return { module: rest[1]!.toLowerCase(), args: rest[2] === undefined ? [] : splitArgs(rest[2]) };
}

function unquote(v: string): string {
  const t = v.trim();
  const q = t[0];
  if ((q === "'" || q === '"' || q === '`') && t.endsWith(q) && t.length >= 2) return t.slice(1, -1).split(q + q).join(q);
  if (q === '[' && t.endsWith(']')) return t.slice(1, -1);
  return t;
}

/** `key = value` options of an FTS declaration (keys lower case); plain column names are not options. */
function options(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of args) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([\s\S]*)$/.exec(a);
    if (m) out.set(m[1]!.toLowerCase(), unquote(m[2]!));
  }
  return out;
}

type VirtualPlan =
  | { kind: 'rows'; rowid: boolean; extraColumns: string[] }
  | { kind: 'rebuild' }
  | { kind: 'refuse'; reason: string; keepDeclaration: boolean };

/** How the content of a virtual table travels (see docs/github-sync.md, "What the mirror carries"). */
function planVirtual(decl: VirtualDecl): VirtualPlan {
  const opts = options(decl.args);
  switch (decl.module) {
    case 'fts5': {
      const content = opts.get('content');
      if (content === '') {
        return { kind: 'refuse', keepDeclaration: true, reason: 'a contentless FTS5 table (content=\'\') keeps only its index, not the text, so it cannot be rebuilt from the mirror; its declaration is kept (it comes back empty): re-index its source after an import' };
      }
      if (opts.get('locale') === '1') return { kind: 'refuse', keepDeclaration: true, reason: 'an FTS5 table with locale=1 stores a locale with each value, which reading the table does not return; its declaration is kept (it comes back empty)' };
      if (content !== undefined) return { kind: 'rebuild' };
      return { kind: 'rows', rowid: true, extraColumns: [] };
    }
    case 'fts3':
    case 'fts4': {
      const content = opts.get('content');
      if (content === '') {
        return { kind: 'refuse', keepDeclaration: true, reason: `a contentless ${decl.module.toUpperCase()} table (content="") keeps only its index, not the text, so it cannot be rebuilt from the mirror; its declaration is kept (it comes back empty)` };
      }
      if (opts.has('compress') || opts.has('uncompress')) {
        return { kind: 'refuse', keepDeclaration: false, reason: `an ${decl.module.toUpperCase()} table with compress/uncompress needs the application's own SQL functions to be read or re-created` };
      }
      if (content !== undefined) return { kind: 'rebuild' };
      const languageid = opts.get('languageid');
      return { kind: 'rows', rowid: true, extraColumns: languageid ? [languageid] : [] };
    }
    case 'rtree':
    case 'rtree_i32':
      return { kind: 'rows', rowid: false, extraColumns: [] }; // the first column is the rowid
    case 'geopoly':
      return { kind: 'rows', rowid: true, extraColumns: [] };
    default:
      return { kind: 'refuse', keepDeclaration: false, reason: `a virtual table of module ${decl.module}: wb-backup does not know how to re-create its content (only FTS3/4/5, R*Tree and Geopoly are carried)` };
  }
}

interface ListedTable {
  name: string;
  type: string;
  wr: number;
  strict: number;
}

interface SchemaRow {
  type: string;
  name: string;
  sql: string;
}

function columnsOf(db: Database.Database, table: string): Array<{ name: string; type: string; pk: number; hidden: number }> {
  return (db.prepare(`PRAGMA table_xinfo(${quoteIdent(table)})`).all() as Array<{ name: string; type: string; pk: number | bigint; hidden: number | bigint }>).map((c) => ({
    name: c.name,
    type: c.type,
    pk: Number(c.pk),
    hidden: Number(c.hidden),
  }));
}

/** The first name of the rowid not taken by a column (column names compare case-insensitively). */
function freeRowidName(columns: readonly string[]): string | null {
  const taken = new Set(columns.map((c) => c.toLowerCase()));
  return ['rowid', '_rowid_', 'oid'].find((n) => !taken.has(n)) ?? null;
}

function ordinaryTable(db: Database.Database, t: ListedTable): TableShape {
  const all = columnsOf(db, t.name);
  const stored = all.filter((c) => c.hidden === 0); // 2 and 3 are generated columns: recomputed on insert
  const pk = all.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  const withoutRowid = Number(t.wr) === 1;
  // An INTEGER PRIMARY KEY is the rowid itself; any other key gets an index of its own (origin 'pk'),
  // and then the rowid is separate and must be carried ("INTEGER PRIMARY KEY DESC" is such a key).
  const pkIndex = (db.prepare(`PRAGMA index_list(${quoteIdent(t.name)})`).all() as Array<{ origin: string }>).some((i) => i.origin === 'pk');
  const aliased = !withoutRowid && pk.length === 1 && !pkIndex;
  const rowidName = withoutRowid ? null : freeRowidName(all.map((c) => c.name));
  const rowid = withoutRowid || aliased ? null : rowidName;
  const orderBy = pk.length ? pk.map(quoteIdent).join(', ') : withoutRowid || !rowidName ? stored.map((c) => quoteIdent(c.name)).join(', ') : rowidName;
  const strict = Number(t.strict) === 1;
  return {
    name: t.name,
    columns: stored.map((c) => c.name),
    tagReal: stored.map((c) => (strict ? c.type.toUpperCase() !== 'REAL' : affinityOf(c.type) !== 'REAL')),
    pk,
    orderBy,
    rowid,
    rowKey: withoutRowid ? null : aliased ? quoteIdent(pk[0]!) : rowidName,
    module: null,
    kind: t.type === 'shadow' ? 'shadow' : 'table',
    withoutRowid,
    rowidName,
  };
}

function virtualTable(db: Database.Database, name: string, module: string, plan: Extract<VirtualPlan, { kind: 'rows' }>): TableShape {
  const all = columnsOf(db, name);
  const visible = all.filter((c) => c.hidden === 0).map((c) => c.name);
  const columns = [...visible, ...plan.extraColumns.filter((c) => !visible.includes(c))];
  const rowid = plan.rowid ? 'rowid' : null;
  const key = plan.rowid ? 'rowid' : quoteIdent(columns[0]!);
  return {
    name,
    columns,
    tagReal: columns.map((c) => affinityOf(all.find((x) => x.name === c)?.type ?? '') !== 'REAL'),
    pk: [],
    orderBy: key,
    rowid,
    rowKey: key,
    module,
    kind: 'virtual',
    withoutRowid: false,
    rowidName: freeRowidName(all.map((c) => c.name)),
  };
}

/** A virtual table whose rows the mirror does not carry itself (rebuilt from its content table, refused, or not parsed): its visible columns. */
function uncarriedVirtualTable(db: Database.Database, name: string, module: string): TableShape {
  const all = columnsOf(db, name);
  const visible = all.filter((c) => c.hidden === 0);
  return {
    name,
    columns: visible.map((c) => c.name),
    tagReal: visible.map((c) => affinityOf(c.type) !== 'REAL'),
    pk: [],
    orderBy: 'rowid',
    rowid: null,
    rowKey: null,
    module,
    kind: 'virtual',
    withoutRowid: false,
    rowidName: freeRowidName(all.map((c) => c.name)),
  };
}

/** Settings of an FTS5 table other than its version, from its `_config` shadow table. */
function fts5ConfigOf(db: Database.Database, name: string): Array<[string, unknown]> {
  const rows = db.prepare(`SELECT k, v FROM ${quoteIdent(`${name}_config`)} WHERE k <> 'version' ORDER BY k`).raw(true).all() as Array<[string, unknown]>;
  return rows;
}

const TYPE_ORDER: Record<string, number> = { table: 0, index: 1, view: 2, trigger: 3 };

/**
 * Whether each statement can be re-created on an empty database (as import will), in order; a
 * statement that fails (an unknown collation, a module this SQLite lacks, an index on such a table)
 * is left out with SQLite's reason.
 */
function replayable(statements: readonly SchemaRow[], encoding: string): Map<string, string> {
  const failed = new Map<string, string>();
  const scratch = new Database(':memory:');
  try {
    scratch.pragma(`encoding = '${encoding}'`);
    for (const s of statements) {
      try {
        scratch.exec(s.sql);
      } catch (err) {
        failed.set(s.name, (err as Error).message);
      }
    }
  } finally {
    scratch.close();
  }
  return failed;
}

/** The schema's statements in a stable order (tables, indexes, views, triggers; by name), shadow tables left out, and each table's pragma_table_list row. */
function schemaStatements(db: Database.Database): { rows: SchemaRow[]; kinds: Map<string, ListedTable> } {
  const listed = (db.prepare("SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main'").all() as ListedTable[]).filter((t) => !t.name.startsWith('sqlite_'));
  const shadow = new Set(listed.filter((t) => t.type === 'shadow').map((t) => t.name));
  const rows = (
    db.prepare("SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all() as SchemaRow[]
  )
    .filter((r) => !shadow.has(r.name))
    .sort((a, b) => (TYPE_ORDER[a.type] ?? 4) - (TYPE_ORDER[b.type] ?? 4) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { rows, kinds: new Map(listed.map((t) => [t.name, t])) };
}

/**
 * Inspect an open database (inside the caller's read transaction): what to mirror and how. Never
 * throws for one table: a table that cannot be read or re-created is in `refused` with the reason.
 */
export function inspectDatabase(db: Database.Database): DatabaseObjects {
  const { rows, kinds } = schemaStatements(db);
  const carried: CarriedTable[] = [];
  const rebuilt: RebuiltTable[] = [];
  const refused: Refusal[] = [];
  const dropped = new Set<string>();
  const fts5Config: Record<string, Array<[string, unknown]>> = {};
  const encoding = String(db.pragma('encoding', { simple: true }));
  const notReplayable = replayable(rows, encoding);

  for (const r of rows) {
    const why = notReplayable.get(r.name);
    if (why !== undefined) {
      dropped.add(r.name);
      refused.push({ table: r.name, reason: `its declaration cannot be re-created on another machine (${why}), so ${r.type === 'table' ? 'neither it nor its rows are' : 'it is not'} in the mirror` });
      continue;
    }
    if (r.type !== 'table') continue;
    try {
      const decl = /^\s*CREATE\s+VIRTUAL\s/i.test(r.sql) ? parseVirtualTable(r.sql) : null;
      if (/^\s*CREATE\s+VIRTUAL\s/i.test(r.sql) && !decl) throw new Error('its CREATE VIRTUAL TABLE statement could not be parsed');
      if (!decl) {
        carried.push(ordinaryTable(db, kinds.get(r.name) ?? { name: r.name, type: 'table', wr: 0, strict: 0 }));
        continue;
      }
      const plan = planVirtual(decl);
      if (plan.kind === 'refuse') {
        if (!plan.keepDeclaration) dropped.add(r.name);
        refused.push({ table: r.name, reason: plan.reason });
        continue;
      }
      if (decl.module === 'fts5') {
        const config = fts5ConfigOf(db, r.name);
        if (config.length) Object.defineProperty(fts5Config, r.name, { value: config, enumerable: true, writable: true, configurable: true });
      }
      if (plan.kind === 'rebuild') rebuilt.push({ name: r.name, module: decl.module });
      else {
        const table = virtualTable(db, r.name, decl.module, plan);
        // Reading one row proves the module can open it here (a tokenizer or function it needs may be missing).
        db.prepare(`SELECT ${table.columns.map(quoteIdent).join(', ') || '1'} FROM ${quoteIdent(r.name)} LIMIT 1`).all();
        carried.push(table);
      }
    } catch (err) {
      const isVirtual = /^\s*CREATE\s+VIRTUAL\s/i.test(r.sql);
      if (isVirtual) dropped.add(r.name);
      refused.push({ table: r.name, reason: `it cannot be read here (${(err as Error).message})${isVirtual ? '; its declaration is left out of schema.sql too' : ''}` });
    }
  }
  const schemaSql = rows
    .filter((r) => !dropped.has(r.name))
    .map((r) => `${r.sql};\n`)
    .join('');
  return { carried, rebuilt, refused, schemaSql, fts5Config };
}

/**
 * The one table-shape lookup (materialize, pull, import and status read tables through it): the
 * table's data columns (the stored columns; for a virtual table carried through itself its
 * declared columns plus an FTS4 languageid column, exactly as materialize writes them), primary
 * key, rowid handling, affinities (tagReal), WITHOUT ROWID, and whether it is ordinary, a shadow or
 * a virtual table. Null when `name` is not a table (missing, or a view). Names compare as SQLite
 * compares them (ASCII case-insensitively). Throws what SQLite throws for a virtual table whose
 * module is missing here.
 */
export function tableShape(db: Database.Database, name: string): TableShape | null {
  const t = db.prepare("SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main' AND name = ? COLLATE NOCASE").get(name) as ListedTable | undefined;
  if (!t || (t.type !== 'table' && t.type !== 'shadow' && t.type !== 'virtual')) return null;
  if (t.type !== 'virtual') return ordinaryTable(db, t);
  const sql = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?").pluck().get(t.name) as string | undefined;
  const decl = sql ? parseVirtualTable(sql) : null;
  const plan = decl ? planVirtual(decl) : null;
  if (decl && plan?.kind === 'rows') return virtualTable(db, t.name, decl.module, plan);
  return uncarriedVirtualTable(db, t.name, decl?.module ?? 'unknown');
}
