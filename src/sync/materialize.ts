import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { VitalDatabase } from '../root/config.js';
import { createHash } from 'node:crypto';
import { quoteIdent } from '../core/sqlite-util.js';
import type { DocumentMapping } from './config.js';
import { decodeUtf8, documentDir, documentShape, renderDocument, type DocumentShape } from './documents.js';
import { ROWID_FIELD, TextBytes, rowLine, rowLineWriter, toJson, type JsonValue, type SqlValue } from './rows.js';
import { inspectDatabase, type CarriedTable, type DatabaseObjects } from './sqlite-objects.js';
import { byCodeUnit } from '../core/text-order.js';
import { describeError } from '../core/errors.js';
import { encodeSegment, mirrorDbDir, mirrorSchemaFile, mirrorTableFile } from '../root/names.js';
import { formatBytes } from '../core/size-format.js';
import { SYNC_SCHEMA_VERSION, isDocumentEntry, type DocumentTableEntry, type JsonlTableEntry, type MirrorDatabaseEntry, type MirrorManifest, type MirrorPragmas, type MirrorTableEntry } from './mirror-manifest.js';

export interface MaterializeOptions {
  exclude: readonly string[];
  maxFileBytes: number;
  /** "db.table" -> { body }: tables mirrored as one Markdown file per row */
  documents?: Readonly<Record<string, DocumentMapping>>;
  /** <root>/db: each database under it gets its path there recorded as `db_path` */
  dbDir?: string;
  /** recorded as each database's source.taken_at (push gives the time it read them); without it, null */
  now?: Date;
  /** the mirror this one replaces: a database whose content_sha256 is unchanged keeps its taken_at */
  previous?: MirrorManifest | null;
}

function excluded(exclude: readonly string[], db: string, table: string): boolean {
  return exclude.includes(table) || exclude.includes(`${db}.${table}`);
}

type Skipped = MirrorManifest['skipped'];

/** The field a table's rowid is written in: ROWID_FIELD unless a column already has that name. */
export function rowidFieldFor(table: CarriedTable): string | undefined {
  if (!table.rowid) return undefined;
  let field = ROWID_FIELD;
  while (table.columns.includes(field)) field += '_';
  return field;
}

/** A table's rows in file order; with a carried rowid, each row starts with it. */
function selectAll(db: Database.Database, table: CarriedTable): Database.Statement {
  const cols = [...(table.rowid ? [table.rowid] : []), ...table.columns.map(quoteIdent)];
  return db.prepare(`SELECT ${cols.join(', ')} FROM ${quoteIdent(table.name)} ORDER BY ${table.orderBy}`).raw(true);
}

/**
 * Rows as stored. better-sqlite3 turns TEXT that is not valid UTF-8 into U+FFFD, so a row holding
 * U+FFFD is read again as bytes (rare: only then is the extra query paid), and text whose bytes do
 * not decode (in the database's encoding) stays bytes (TextBytes), written back as they were.
 */
export function* readRows(db: Database.Database, table: CarriedTable): Generator<SqlValue[]> {
  const encoding = String(db.pragma('encoding', { simple: true })).toLowerCase();
  if (encoding !== 'utf-8') {
    yield* readWideRows(db, table, encoding);
    return;
  }
  const offset = table.rowid ? 1 : 0;
  const rawCols = table.columns.map((c) => `CASE typeof(${quoteIdent(c)}) WHEN 'text' THEN CAST(${quoteIdent(c)} AS BLOB) ELSE NULL END`);
  let again: Database.Statement | null = null;
  let keyIndex = -1;
  if (table.rowKey) {
    keyIndex = table.rowid ? 0 : table.columns.findIndex((c) => quoteIdent(c) === table.rowKey) + offset;
  }
  let n = 0;
  for (const row of selectAll(db, table).iterate() as Iterable<SqlValue[]>) {
    const position = n++;
    if (!row.some((v) => typeof v === 'string' && v.includes('\uFFFD'))) {
      yield row;
      continue;
    }
    if (table.rowKey && keyIndex >= 0) {
      again ??= db.prepare(`SELECT ${rawCols.join(', ')} FROM ${quoteIdent(table.name)} WHERE ${table.rowKey} = ?`).raw(true);
    } else {
      again ??= db.prepare(`SELECT ${rawCols.join(', ')} FROM ${quoteIdent(table.name)} ORDER BY ${table.orderBy} LIMIT 1 OFFSET ?`).raw(true);
    }
    const bytes = again.get(table.rowKey && keyIndex >= 0 ? row[keyIndex] : position) as Array<Buffer | null> | undefined;
    yield row.map((v, i) => {
      const raw = i >= offset ? bytes?.[i - offset] : null;
      if (typeof v !== 'string' || !raw || !v.includes('\uFFFD')) return v;
      return decodeUtf8(raw) === null ? new TextBytes(Buffer.from(raw)) : v;
    });
  }
}

/**
 * readRows for a UTF-16 database: SQLite's conversion to UTF-8 pairs a lone surrogate with the
 * next unit instead of marking it, so no U+FFFD would show; every text value is read as its
 * UTF-16 bytes and decoded strictly (rare databases: the cost is paid only there).
 */
function* readWideRows(db: Database.Database, table: CarriedTable, encoding: string): Generator<SqlValue[]> {
  const decoder = new TextDecoder(encoding, { fatal: true, ignoreBOM: true });
  const cols = [...(table.rowid ? [table.rowid] : []), ...table.columns.map(quoteIdent)];
  const exprs = cols.flatMap((c) => [`typeof(${c})`, `CASE typeof(${c}) WHEN 'text' THEN CAST(${c} AS BLOB) ELSE ${c} END`]);
  const stmt = db.prepare(`SELECT ${exprs.join(', ')} FROM ${quoteIdent(table.name)} ORDER BY ${table.orderBy}`).raw(true);
  for (const raw of stmt.iterate() as Iterable<SqlValue[]>) {
    const row: SqlValue[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const value = raw[i + 1] ?? null;
      if (raw[i] !== 'text' || !Buffer.isBuffer(value)) {
        row.push(value);
        continue;
      }
      try {
        row.push(decoder.decode(value));
      } catch {
        row.push(new TextBytes(Buffer.from(value)));
      }
    }
    yield row;
  }
}

/** `<db>/<table>.jsonl`; null when it grew past the cap (then it is removed and listed). */
function writeJsonl(dir: string, file: string, db: Database.Database, table: CarriedTable, maxFileBytes: number, skipped: Skipped): JsonlTableEntry | null {
  const fd = fs.openSync(path.join(dir, file), 'w');
  let bytes = 0;
  let rows = 0;
  let tooBig = false;
  // Lines are gathered into ~1 MB writes: one syscall per row would dominate the export.
  let pending = '';
  const rowidField = rowidFieldFor(table);
  const line = rowLineWriter(table.columns, { tagReal: table.tagReal, ...(rowidField ? { rowidField } : {}) });
  try {
    for (const row of readRows(db, table)) {
      pending += `${line(row)}\n`;
      if (pending.length > 1 << 20) {
        bytes += fs.writeSync(fd, pending);
        pending = '';
        if (bytes > maxFileBytes) {
          tooBig = true;
          break;
        }
      }
      rows++;
    }
    if (!tooBig && pending) bytes += fs.writeSync(fd, pending);
    if (bytes > maxFileBytes) tooBig = true;
  } finally {
    fs.closeSync(fd);
  }
  if (!tooBig) return { file, rows, ...(rowidField && rowidField !== ROWID_FIELD ? { rowid_field: rowidField } : {}) };
  fs.rmSync(path.join(dir, file));
  skipped.push({ path: file, reason: `larger than the per-file cap of ${formatBytes(maxFileBytes)}` });
  return null;
}

/**
 * Git must store bodies byte for byte: with core.autocrlf set (common on Windows) it would turn
 * CRLF in a body into LF. Written into each document directory, so it applies to nothing else.
 */
const DOCUMENT_GITATTRIBUTES = '*.md -text\n';

/** `<db>/<table>/<key>.md` per row; a row too large or without a usable key is listed in skipped. */
function writeDocuments(dir: string, rel: string, db: Database.Database, table: CarriedTable, shape: DocumentShape, maxFileBytes: number, skipped: Skipped): DocumentTableEntry {
  fs.mkdirSync(path.join(dir, rel), { recursive: true });
  fs.writeFileSync(path.join(dir, rel, '.gitattributes'), DOCUMENT_GITATTRIBUTES);
  let rows = 0;
  const rowidField = rowidFieldFor(table);
  for (const full of readRows(db, table)) {
    const row = rowidField ? full.slice(1) : full;
    const doc = renderDocument(shape, row, rowidField ? { field: rowidField, value: full[0] ?? null } : undefined);
    if ('reason' in doc) {
      const key = rowLine([shape.key], [row[table.columns.indexOf(shape.key)] ?? null]);
      skipped.push({ path: rel, reason: `row ${key.length > 80 ? `${key.slice(0, 67)}…` : key}: ${doc.reason}` });
      continue;
    }
    const bytes = Buffer.from(doc.text, 'utf8');
    if (bytes.length > maxFileBytes) {
      skipped.push({ path: `${rel}${doc.name}`, reason: `larger than the per-file cap of ${formatBytes(maxFileBytes)}` });
      continue;
    }
    fs.writeFileSync(path.join(dir, rel, doc.name), bytes);
    rows++;
  }
  return { dir: rel, format: 'documents', key: shape.key, body: shape.body, rows, ...(rowidField && rowidField !== ROWID_FIELD ? { rowid_field: rowidField } : {}) };
}

/** A full disk is the mirror's problem, not one table's: it stops the whole materialization. */
function isDiskFull(err: unknown): boolean {
  return /ENOSPC|SQLITE_FULL|disk is full/i.test(`${(err as { code?: string }).code ?? ''} ${describeError(err)}`);
}

function excludedMsg(file: string): { path: string; reason: string } {
  return { path: file, reason: 'excluded by sync.github.exclude_tables' };
}

/** Mappings naming a database or table that is not there: reported, so a typo does not go unnoticed. */
function unmatchedMappings(documents: Readonly<Record<string, DocumentMapping>>, seen: ReadonlySet<string>, databases: readonly VitalDatabase[]): Array<{ table: string; reason: string }> {
  const out: Array<{ table: string; reason: string }> = [];
  for (const table of Object.keys(documents).filter((t) => !seen.has(t)).sort()) {
    const dbName = table.split('.')[0]!;
    const vital = databases.find((d) => d.name === dbName);
    if (!vital) out.push({ table, reason: `sync.github.documents names ${table}, but there is no database ${dbName}` });
    else if (fs.existsSync(vital.path)) out.push({ table, reason: `sync.github.documents names ${table}, which is not a table of that database` });
    // (a database whose file is missing is already listed in skipped)
  }
  return out;
}

/** The database-wide state the mirror carries besides rows: settings, AUTOINCREMENT counters, FTS5 settings. Only what is there is written. */
function databaseState(db: Database.Database, objects: DatabaseObjects, rebuild: string[]): Partial<MirrorDatabaseEntry> {
  const out: Partial<MirrorDatabaseEntry> = {};
  const pragmas: MirrorPragmas = {};
  const encoding = String(db.pragma('encoding', { simple: true }));
  if (encoding !== 'UTF-8') pragmas.encoding = encoding;
  const applicationId = Number(db.pragma('application_id', { simple: true }));
  if (applicationId !== 0) pragmas.application_id = applicationId;
  const autoVacuum = Number(db.pragma('auto_vacuum', { simple: true }));
  if (autoVacuum !== 0) pragmas.auto_vacuum = autoVacuum;
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  if (pageSize !== 4096) pragmas.page_size = pageSize;
  const journal = String(db.pragma('journal_mode', { simple: true })).toLowerCase();
  if (journal === 'wal') pragmas.journal_mode = journal;
  if (Object.keys(pragmas).length) out.pragmas = pragmas;
  const hasSequence = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_sequence'").get() !== undefined;
  if (hasSequence) {
    const rows = db.prepare('SELECT name, seq FROM sqlite_sequence ORDER BY rowid').raw(true).all() as Array<[SqlValue, SqlValue]>;
    if (rows.length) out.sqlite_sequence = rows.map(([name, seq]) => ({ name: toJson(name), seq: toJson(seq) }));
  }
  const config = Object.entries(objects.fts5Config);
  if (config.length) out.fts5_config = Object.fromEntries(config.map(([t, kv]) => [t, kv.map(([k, v]): [string, JsonValue] => [k, toJson(v as SqlValue)])]));
  if (rebuild.length) out.rebuild = rebuild;
  return out;
}

/**
 * sha256 of one database's mirror content, as materialize wrote it or as a clone holds it: the
 * schema file, every table file and document (in path order, each as `path\nsize\n` + bytes),
 * then `state` (user_version, settings, counters) as JSON. The same data always gives the same
 * value; import compares it with manifest.source.content_sha256 to say whether a clone holds
 * exactly the recorded state.
 */
export function mirrorDigest(root: string, entry: Pick<MirrorDatabaseEntry, 'schema' | 'tables'>, state: unknown): string {
  const files: string[] = [entry.schema];
  for (const info of Object.values(entry.tables)) {
    if (isDocumentEntry(info)) {
      const dir = path.join(root, info.dir);
      if (fs.existsSync(dir)) for (const n of fs.readdirSync(dir).filter((f) => f.endsWith('.md'))) files.push(`${info.dir}${n}`);
    } else files.push(info.file);
  }
  const hash = createHash('sha256');
  for (const f of files.sort(byCodeUnit)) {
    const full = path.join(root, f);
    // Only regular files count (a clone can hold a symbolic link where a mirror file should be; it is never followed).
    const bytes = fs.existsSync(full) && fs.lstatSync(full).isFile() ? fs.readFileSync(full) : null;
    hash.update(`${f}\n${bytes ? bytes.length : -1}\n`);
    if (bytes) hash.update(bytes);
  }
  hash.update(JSON.stringify(state));
  return hash.digest('hex');
}

/** The path components of `file` under `dbDir`, or null when it is not under it. */
function dbPathUnder(dbDir: string, file: string): string[] | null {
  const rel = path.relative(path.resolve(dbDir), path.resolve(file));
  if (!rel || path.isAbsolute(rel) || rel.split(path.sep)[0] === '..') return null;
  return rel.split(path.sep);
}

/** What materialize gathers across databases: the manifest, the documents warnings, and which mappings were seen. */
interface Gathered {
  manifest: MirrorManifest;
  warnings: NonNullable<MirrorManifest['warnings']>;
  /** "db.table" of every sync.github.documents mapping that named a real table */
  seen: Set<string>;
}

/**
 * Write the readable mirror of `databases` into `dir` (which must hold nothing else of ours):
 * `<db>/schema.sql`, `<db>/<table>.jsonl` (or `<db>/<table>/<key>.md` for tables in
 * opts.documents), `manifest.json`. Each database is read in one read transaction. The same data
 * always gives byte-identical files.
 */
export function materialize(dir: string, databases: readonly VitalDatabase[], opts: MaterializeOptions): MirrorManifest {
  const out: Gathered = { manifest: { schema_version: SYNC_SCHEMA_VERSION, databases: {}, skipped: [] }, warnings: [], seen: new Set() };
  for (const vital of [...databases].sort((a, b) => byCodeUnit(a.name, b.name))) materializeDatabase(dir, vital, opts, out);
  const { manifest, warnings } = out;
  warnings.push(...unmatchedMappings(opts.documents ?? {}, out.seen, databases));
  // Only written when there is something to say, so mirrors without documents keep their exact bytes.
  if (warnings.length) manifest.warnings = warnings;
  fs.writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * One database in one read transaction: schema.sql, every carried table, the database-wide state,
 * and its manifest entry. A database that cannot be opened or read is listed in skipped (the
 * others go on); a full disk stops everything.
 */
function materializeDatabase(dir: string, vital: VitalDatabase, opts: MaterializeOptions, out: Gathered): void {
  const { manifest } = out;
  if (!fs.existsSync(vital.path)) {
    manifest.skipped.push({ path: mirrorDbDir(vital.name), reason: 'the database file does not exist' });
    return;
  }
  // Every data name becomes a path only through names.ts: a table named ../../x stays inside.
  const dbDir = path.join(dir, mirrorDbDir(vital.name));
  let db: Database.Database;
  try {
    db = new Database(vital.path, { fileMustExist: true, timeout: 5000 });
  } catch (err) {
    manifest.skipped.push({ path: mirrorDbDir(vital.name), reason: `the database could not be opened: ${describeError(err)}` });
    return;
  }
  db.defaultSafeIntegers(true);
  try {
    db.exec('BEGIN');
    const objects = inspectDatabase(db);
    fs.mkdirSync(dbDir, { recursive: true });
    fs.writeFileSync(path.join(dir, mirrorSchemaFile(vital.name)), objects.schemaSql);
    const entry: MirrorDatabaseEntry = { schema: mirrorSchemaFile(vital.name), user_version: Number(db.pragma('user_version', { simple: true })), tables: {} };
    for (const r of objects.refused) manifest.skipped.push({ path: tableLabelOf(vital.name, r.table), reason: `not carried: ${r.reason}` });
    for (const table of objects.carried) {
      const written = writeTable(dir, db, vital.name, table, opts, out);
      // defineProperty: a table named __proto__ would otherwise set the prototype and be left out of the manifest.
      if (written) Object.defineProperty(entry.tables, table.name, { value: written, enumerable: true, writable: true, configurable: true });
    }
    const rebuild = objects.rebuilt.filter((t) => !excluded(opts.exclude, vital.name, t.name)).map((t) => t.name);
    for (const t of objects.rebuilt) if (!rebuild.includes(t.name)) manifest.skipped.push(excludedMsg(tableLabelOf(vital.name, t.name)));
    Object.assign(entry, databaseState(db, objects, rebuild));
    manifest.databases[vital.name] = finishEntry(dir, vital, entry, opts);
  } catch (err) {
    // A database that cannot be read (not SQLite, corrupt, locked) is listed; the others go on.
    if (isDiskFull(err)) throw err;
    fs.rmSync(dbDir, { recursive: true, force: true });
    manifest.skipped.push({ path: mirrorDbDir(vital.name), reason: `the database could not be read: ${describeError(err)}` });
  } finally {
    endRead(db);
  }
}

/** A table the mirror does not carry is named by the path it would have (names.ts), without the extension. */
function tableLabelOf(db: string, table: string): string {
  return `${mirrorDbDir(db)}/${encodeSegment(table)}`;
}

/**
 * One table as JSONL or as documents (sync.github.documents); null when it is excluded, over the
 * cap, or cannot be read (listed in skipped; its file removed). A mapping that cannot be honoured
 * is a warning, and the table stays JSONL.
 */
function writeTable(dir: string, db: Database.Database, dbName: string, table: CarriedTable, opts: MaterializeOptions, out: Gathered): MirrorTableEntry | null {
  const { skipped } = out.manifest;
  const qualified = `${dbName}.${table.name}`;
  const mapping = (opts.documents ?? {})[qualified];
  if (mapping) out.seen.add(qualified);
  if (excluded(opts.exclude, dbName, table.name)) {
    skipped.push(excludedMsg(mapping ? documentDir(dbName, table.name) : mirrorTableFile(dbName, table.name)));
    return null;
  }
  const shape = mapping ? documentShape(table, mapping.body) : null;
  if (shape && 'reason' in shape) out.warnings.push({ table: qualified, reason: `${shape.reason}; mirrored as ${mirrorTableFile(dbName, table.name)} instead` });
  const asDocuments = shape && !('reason' in shape) ? shape : null;
  const where = asDocuments ? documentDir(dbName, table.name) : mirrorTableFile(dbName, table.name);
  try {
    return asDocuments ? writeDocuments(dir, where, db, table, asDocuments, opts.maxFileBytes, skipped) : writeJsonl(dir, where, db, table, opts.maxFileBytes, skipped);
  } catch (err) {
    // One table that cannot be read never costs the others: listed, and its file removed.
    if (isDiskFull(err)) throw err;
    fs.rmSync(path.join(dir, where), { recursive: true, force: true });
    skipped.push({ path: where, reason: `not carried: the table could not be read: ${describeError(err)}` });
    return null;
  }
}

/** The entry's `source` (content digest, when read) and `db_path`, in the manifest's key order. */
function finishEntry(dir: string, vital: VitalDatabase, entry: MirrorDatabaseEntry, opts: MaterializeOptions): MirrorDatabaseEntry {
  const state = { user_version: entry.user_version, pragmas: entry.pragmas, sqlite_sequence: entry.sqlite_sequence, fts5_config: entry.fts5_config, rebuild: entry.rebuild };
  const digest = mirrorDigest(dir, entry, state);
  // An unchanged database keeps the taken_at of the mirror that first held its state (so a change
  // to one database does not touch the others' records), and a push whose only change would be
  // this record makes no commit (mirror-commit.ts).
  const before = opts.previous?.databases?.[vital.name]?.source;
  const unchanged = opts.now && before && before.snapshot_id === null && before.content_sha256 === digest && typeof before.taken_at === 'string';
  entry.source = { snapshot_id: null, content_sha256: digest, taken_at: unchanged ? before.taken_at : opts.now ? opts.now.toISOString() : null };
  const dbPath = opts.dbDir ? dbPathUnder(opts.dbDir, vital.path) : null;
  // Key order in the file: schema, user_version, source, db_path, tables, then the rest.
  const { schema, user_version, source, tables, ...rest } = entry;
  return { schema, user_version, source, ...(dbPath ? { db_path: dbPath } : {}), tables, ...rest };
}

/** End a read transaction and close: after a corrupt page even COMMIT may fail; rolling back loses nothing. */
function endRead(db: Database.Database): void {
  if (db.inTransaction) {
    try {
      db.exec('COMMIT');
    } catch {
      if (db.inTransaction) db.exec('ROLLBACK');
    }
  }
  db.close();
}
