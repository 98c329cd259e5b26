/**
 * Rebuilding one database from a clone of the mirror (import's build step): settings, schema,
 * rows, indexes, counters, triggers, then the checks. Reads only the files the validated manifest
 * names, and never through a link or outside the clone.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { quoteIdent } from '../core/sqlite-util.js';
import { DocumentError, decodeUtf8, documentShape, parseDocumentWithRowid } from './documents.js';
import { mirrorDigest } from './materialize.js';
import { isDocumentEntry, type DocumentTableEntry, type JsonlTableEntry, type MirrorDatabaseEntry, type MirrorPragmas, type MirrorSource, type MirrorTableEntry } from './mirror-manifest.js';
import { tableShape, type TableShape } from './sqlite-objects.js';
import { ROWID_FIELD, TextBytes, fromJson, parseRowsWithRowids, type SqlValue } from './rows.js';

/** What buildDatabase learned about the state the mirror holds (reported by import). */
export interface BuiltDatabase {
  /** manifest.source (null in mirrors written before it was recorded) */
  source: MirrorSource | null;
  /** whether the clone's files still hash to source.content_sha256 (false: edited since, or tables held back by the per-push cap); null without a source */
  source_matches: boolean | null;
  /** rows loaded per table */
  rows?: Record<string, number>;
  /** tables whose files hold another number of rows than the manifest records (only when the clone was edited since push, or has no source) */
  row_counts_differ?: Array<{ table: string; manifest: number; imported: number }>;
}

/** The rows of one table as the mirror holds them, with the rowid each carries (null: none). */
interface LoadedRows {
  rows: SqlValue[][];
  rowids: Array<bigint | null>;
}

/**
 * Rebuild one database from the mirror into `file` (a new file): settings, schema.sql, FTS5
 * settings, the rows of every table (ordinary and virtual, with their rowids), external-content
 * indexes rebuilt, sqlite_sequence, then triggers (so they do not fire while loading). Foreign keys
 * and the row counts of the manifest (when the clone is the recorded state) are checked at the end;
 * returns the rows loaded and the counts that differ from the manifest. Throws on the first problem, with the
 * file (and line) that has it.
 */
export function buildDatabase(clone: string, dbName: string, entry: MirrorDatabaseEntry, file: string, onTable?: (table: string) => void): BuiltDatabase {
  // Whether the clone is exactly the state push recorded: only then are the manifest's row counts
  // (and the database's own dangling references) authoritative. Edited since (a row added on
  // GitHub, the other side of pull) or written before `source`: the files are the data.
  const matches = entry.source ? sourceMatches(clone, entry) : null;
  const db = new Database(file);
  try {
    applyPragmasBefore(db, entry.pragmas);
    const schemaText = readCloneFile(clone, entry.schema);
    // Rows are loaded as they were: triggers must not fire (they would add rows) and parents may
    // come after children, so foreign keys are checked once at the end instead.
    db.pragma('foreign_keys = OFF');
    // One transaction for the whole build: the file is new, and one commit is one flush, not one per statement.
    db.exec('BEGIN');
    const { triggers, legacyShadow } = createSchemaWithoutTriggers(db, entry, schemaText);
    applyFts5Config(db, entry);
    loadTables(db, clone, entry, legacyShadow, onTable);
    rebuildIndexes(db, entry);
    restoreSequence(db, entry);
    for (const t of triggers) db.exec(t.sql);
    db.pragma(`user_version = ${intSetting(entry.user_version, 'user_version')}`);
    db.exec('COMMIT');
    if (legacyShadow.size) db.unsafeMode(false);
    const counted = checkLoaded(db, entry, matches);
    if (entry.pragmas?.journal_mode === 'wal') db.pragma('journal_mode = WAL');
    return { source: entry.source ?? null, source_matches: matches, ...counted };
  } finally {
    db.close();
  }
}

/**
 * Run schema.sql and drop its triggers (re-created after the rows). An older mirror's dump of a
 * virtual table's shadow tables (legacyShadow) is loaded as it was: writing to shadow tables needs
 * SQLite's defensive mode off, which is turned on again after COMMIT.
 */
function createSchemaWithoutTriggers(db: Database.Database, entry: MirrorDatabaseEntry, schemaText: string): { triggers: Array<{ name: string; sql: string }>; legacyShadow: Set<string> } {
  const legacyFts = !entry.source && /CREATE\s+VIRTUAL\s+TABLE/i.test(schemaText);
  createSchema(db, schemaText, legacyFts);
  const legacyShadow = legacyShadowTables(db, entry);
  const triggers = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger'").all() as Array<{ name: string; sql: string }>;
  for (const t of triggers) db.exec(`DROP TRIGGER ${quoteIdent(t.name)}`);
  // SQLite refuses writes to shadow tables (defensive mode) unless told otherwise: only an older mirror's dump needs them.
  if (legacyShadow.size) db.unsafeMode(true);
  return { triggers, legacyShadow };
}

function isVirtual(db: Database.Database, table: string): boolean {
  return tableShape(db, table)?.kind === 'virtual';
}

/** FTS5 settings (rank, automerge, …), before the rows are loaded. */
function applyFts5Config(db: Database.Database, entry: MirrorDatabaseEntry): void {
  for (const [table, settings] of Object.entries(entry.fts5_config ?? {})) {
    if (!isVirtual(db, table)) throw new Error(`the manifest has FTS5 settings for ${table}, which ${entry.schema} does not declare as a virtual table`);
    const set = db.prepare(`INSERT INTO ${quoteIdent(table)} (${quoteIdent(table)}, rank) VALUES (?, ?)`);
    for (const [k, v] of settings) set.run(k, fromJson(v, `${entry.schema.split('/')[0]} fts5_config of ${table}`));
  }
}

/** The rows of every table the manifest lists (documents or JSONL), with the rowids they carry. */
function loadTables(db: Database.Database, clone: string, entry: MirrorDatabaseEntry, legacyShadow: ReadonlySet<string>, onTable?: (table: string) => void): void {
  for (const [table, info] of Object.entries(entry.tables)) {
    if (legacyShadow.has(table)) {
      // An older mirror's dump of a shadow table: the index exactly as it was, replacing the empty one the virtual table made.
      db.exec(`DELETE FROM ${quoteIdent(table)}`);
    }
    const shape = tableShape(db, table);
    if (!shape) throw new Error(`the manifest lists the table ${table}, which ${entry.schema} does not create`);
    const loaded = isDocumentEntry(info) ? readDocuments(clone, shape, table, info) : readJsonl(clone, info, shape.columns);
    const insert = inserter(db, table, shape.columns, shape.rowidName);
    loaded.rows.forEach((row, i) => insert(row, loaded.rowids[i] ?? null));
    onTable?.(table);
  }
}

/** External-content indexes, rebuilt from their content table once its rows are in. */
function rebuildIndexes(db: Database.Database, entry: MirrorDatabaseEntry): void {
  for (const table of entry.rebuild ?? []) {
    if (!isVirtual(db, table)) throw new Error(`the manifest asks to rebuild ${table}, which ${entry.schema} does not declare as a virtual table`);
    db.prepare(`INSERT INTO ${quoteIdent(table)} (${quoteIdent(table)}) VALUES ('rebuild')`).run();
  }
}

/** AUTOINCREMENT counters: loading rows with their ids moved them to the highest id; the source's may be higher (deleted rows). */
function restoreSequence(db: Database.Database, entry: MirrorDatabaseEntry): void {
  if (!entry.sqlite_sequence) return;
  const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'").get() !== undefined;
  if (!exists) return;
  db.exec('DELETE FROM sqlite_sequence');
  const put = db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)');
  for (const s of entry.sqlite_sequence) put.run(fromJson(s.name, 'sqlite_sequence name'), fromJson(s.seq, 'sqlite_sequence seq'));
}

/**
 * After COMMIT: foreign keys, and each table's rows against the manifest's count. Throws when the
 * clone is exactly the recorded state yet differs (damage); otherwise returns the counts and the
 * tables whose count differs (an edited clone's rows are the data).
 */
function checkLoaded(db: Database.Database, entry: MirrorDatabaseEntry, matches: boolean | null): Required<Pick<BuiltDatabase, 'rows' | 'row_counts_differ'>> {
  const fk = db.pragma('foreign_key_check') as unknown[];
  // SQLite leaves foreign keys off by default, so a database may hold dangling references of its
  // own: when the clone is exactly the state push read, they are the database's, and it comes back
  // as it was. Only rows changed in the repository since then are refused for breaking a key.
  if (fk.length && !matches) throw new Error(`${entry.schema.split('/')[0]} has ${fk.length} foreign-key violation(s) after loading`);
  const rows: Record<string, number> = {};
  const differ: NonNullable<BuiltDatabase['row_counts_differ']> = [];
  for (const [table, info] of Object.entries(entry.tables)) {
    const count = Number(db.prepare(`SELECT count(*) FROM ${quoteIdent(table)}`).pluck().get());
    Object.defineProperty(rows, table, { value: count, enumerable: true, writable: true, configurable: true });
    if (count === info.rows) continue;
    // The files hash to what push wrote, yet the count differs: the manifest or the build is wrong.
    if (matches) throw new Error(`${where(info)} holds ${count} rows, the manifest says ${info.rows}`);
    differ.push({ table, manifest: Number(info.rows), imported: count });
  }
  return { rows, row_counts_differ: differ };
}

/** A mirror file's text, refusing anything that is not a regular file inside the clone (git can check out symbolic links). */
function readCloneFile(clone: string, rel: string): string {
  const full = path.join(clone, ...rel.split('/'));
  const real = fs.realpathSync(full);
  if (!real.startsWith(fs.realpathSync(clone) + path.sep) || !fs.lstatSync(full).isFile()) throw new Error(`${rel} is not a regular file inside the clone`);
  return fs.readFileSync(real, 'utf8');
}

/** `INSERT INTO t (rowid?, cols) VALUES (...)`; TEXT that is not valid UTF-8 is bound as bytes and cast back to TEXT, which keeps them. */
function inserter(db: Database.Database, table: string, columns: readonly string[], rowidName: string | null): (row: readonly SqlValue[], rowid: bigint | null) => void {
  const cache = new Map<string, Database.Statement>();
  return (row, rowid) => {
    const withRowid = rowid !== null && rowidName !== null;
    const shape = row.map((v) => (v instanceof TextBytes ? 't' : '?')).join('') + (withRowid ? 'r' : '');
    let stmt = cache.get(shape);
    if (!stmt) {
      const names = [...(withRowid ? [rowidName] : []), ...columns.map(quoteIdent)];
      const marks = [...(withRowid ? ['?'] : []), ...row.map((v) => (v instanceof TextBytes ? 'CAST(? AS TEXT)' : '?'))];
      stmt = db.prepare(`INSERT INTO ${quoteIdent(table)} (${names.join(', ')}) VALUES (${marks.join(', ')})`);
      cache.set(shape, stmt);
    }
    const values = row.map((v) => (v instanceof TextBytes ? v.bytes : v));
    stmt.run(...(withRowid ? [rowid, ...values] : values));
  };
}

/** A mirror written before shadow tables were left out: they were dumped as tables (such a mirror could not be imported then). */
function legacyShadowTables(db: Database.Database, entry: MirrorDatabaseEntry): Set<string> {
  if (entry.source) return new Set();
  return new Set(Object.keys(entry.tables).filter((n) => tableShape(db, n)?.kind === 'shadow'));
}

/** Run schema.sql; an older mirror's CREATE TABLE of a virtual table's shadow table is skipped (the virtual table makes it). */
function createSchema(db: Database.Database, sql: string, legacy: boolean): void {
  if (!legacy) {
    db.exec(sql);
    return;
  }
  // Older mirrors wrote each statement as `<sql>;\n`, tables first: virtual tables go first so that
  // their shadow tables exist, and a CREATE TABLE of an existing name is then a shadow table.
  const statements = sql.split(/;\n(?=CREATE\s)/i).map((x) => x.replace(/;\n?$/, '')).filter((x) => x.trim());
  const isVirtual = (x: string) => /^\s*CREATE\s+VIRTUAL\s/i.test(x);
  for (const x of statements.filter(isVirtual)) db.exec(x);
  for (const x of statements.filter((y) => !isVirtual(y))) {
    try {
      db.exec(x);
    } catch (err) {
      if (!/already exists|reserved for internal use/.test((err as Error).message)) throw err;
    }
  }
}

const ENCODINGS = ['UTF-8', 'UTF-16le', 'UTF-16be'];

/** A whole number from the manifest, for a PRAGMA (32-bit: every setting the mirror carries fits). */
function intSetting(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || Math.abs(value) > 2 ** 31) throw new Error(`the manifest's ${name} ${JSON.stringify(value)} is not a whole number`);
  return value;
}

function applyPragmasBefore(db: Database.Database, pragmas: MirrorPragmas | undefined): void {
  // Encoding, page size and auto_vacuum only take effect on an empty database: set before the schema.
  // The manifest is input: each value is checked before it becomes part of a PRAGMA.
  if (pragmas?.encoding !== undefined) {
    if (typeof pragmas.encoding !== 'string' || !ENCODINGS.includes(pragmas.encoding)) throw new Error(`the manifest's encoding ${JSON.stringify(pragmas.encoding)} is not one SQLite has (${ENCODINGS.join(', ')})`);
    db.pragma(`encoding = '${pragmas.encoding}'`);
  }
  if (pragmas?.page_size !== undefined) db.pragma(`page_size = ${intSetting(pragmas.page_size, 'page_size')}`);
  db.pragma(`auto_vacuum = ${intSetting(pragmas?.auto_vacuum ?? 0, 'auto_vacuum')}`);
  if (pragmas?.application_id !== undefined) db.pragma(`application_id = ${intSetting(pragmas.application_id, 'application_id')}`);
}

/** Whether the clone's files for this database hash to the state push recorded (`source.content_sha256`). */
function sourceMatches(clone: string, entry: MirrorDatabaseEntry): boolean {
  const state = { user_version: entry.user_version, pragmas: entry.pragmas, sqlite_sequence: entry.sqlite_sequence, fts5_config: entry.fts5_config, rebuild: entry.rebuild };
  return !!entry.source && mirrorDigest(clone, entry, state) === entry.source.content_sha256;
}

function readJsonl(clone: string, info: JsonlTableEntry, columns: readonly string[]): LoadedRows {
  return parseRowsWithRowids(readCloneFile(clone, info.file), info.file, columns, info.rowid_field ?? ROWID_FIELD);
}

function where(info: MirrorTableEntry): string {
  return isDocumentEntry(info) ? info.dir : info.file;
}

/** Every `<key>.md` of a document table, as rows in table order; the first bad file stops the import. */
function readDocuments(clone: string, table: TableShape, name: string, info: DocumentTableEntry): LoadedRows {
  const shape = documentShape({ name, columns: table.columns, pk: table.pk }, info.body);
  if ('reason' in shape) throw new Error(`${info.dir} cannot be read as documents: ${shape.reason}`);
  if (shape.key !== info.key) throw new Error(`${info.dir}: the manifest keys it by ${info.key}, the schema by ${shape.key}`);
  const dir = path.join(clone, info.dir);
  // An empty table may have no directory in git (git keeps no empty folders).
  if (fs.existsSync(dir) && !fs.realpathSync(dir).startsWith(fs.realpathSync(clone) + path.sep)) throw new Error(`${info.dir} is not a folder inside the clone`);
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.md')).sort() : [];
  const out: LoadedRows = { rows: [], rowids: [] };
  for (const name of names) {
    const file = `${info.dir}${name}`;
    if (!fs.lstatSync(path.join(dir, name)).isFile()) throw new DocumentError(file, null, 'not a regular file (a symbolic link is never followed)');
    const text = decodeUtf8(fs.readFileSync(path.join(dir, name)));
    if (text === null) throw new DocumentError(file, null, 'the file is not valid UTF-8');
    const { row, rowid } = parseDocumentWithRowid(shape, file, text, info.rowid_field ?? ROWID_FIELD);
    out.rows.push(row);
    out.rowids.push(rowid);
  }
  return out;
}
