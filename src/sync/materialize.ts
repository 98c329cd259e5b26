import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { VitalDatabase } from '../config.js';
import { quoteIdent } from '../sqlite-util.js';
import type { DocumentMapping } from './config.js';
import { documentDir, documentShape, renderDocument, type DocumentShape } from './documents.js';
import { rowLine, rowLineWriter, type SqlValue } from './rows.js';
import { byCodeUnit } from '../text-order.js';
import { errorMessage } from '../errors.js';
import { mirrorDbDir, mirrorSchemaFile, mirrorTableFile } from '../names.js';

export const SYNC_SCHEMA_VERSION = 1;

export interface JsonlTableEntry {
  file: string;
  rows: number;
}
/** A table mirrored as `<dir><key>.md` files (see documents.ts). */
export interface DocumentTableEntry {
  dir: string;
  format: 'documents';
  key: string;
  body: string;
  rows: number;
}
export type MirrorTableEntry = JsonlTableEntry | DocumentTableEntry;

export function isDocumentEntry(entry: MirrorTableEntry): entry is DocumentTableEntry {
  return 'format' in entry && entry.format === 'documents';
}

export interface MirrorManifest {
  schema_version: number;
  databases: Record<string, { schema: string; user_version: number; tables: Record<string, MirrorTableEntry> }>;
  skipped: Array<{ path: string; reason: string }>;
  /** sync.github.documents entries that could not be honoured (the table stays JSONL); absent when none. */
  warnings?: Array<{ table: string; reason: string }>;
}

export interface MaterializeOptions {
  exclude: readonly string[];
  maxFileBytes: number;
  /** "db.table" -> { body }: tables mirrored as one Markdown file per row */
  documents?: Readonly<Record<string, DocumentMapping>>;
}

interface TableInfo {
  name: string;
  columns: string[];
  pk: string[];
  orderBy: string;
}

function tablesOf(db: Database.Database): TableInfo[] {
  const names = db
    .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name")
    .all() as Array<{ name: string; sql: string }>;
  return names.map(({ name, sql }) => {
    const info = db.prepare(`PRAGMA table_info(${quoteIdent(name)})`).all() as Array<{ name: string; pk: number }>;
    // Number(): under safe integers PRAGMA values are bigints, which a sort comparator cannot return.
    const pk = info.filter((c) => c.pk > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name);
    const withoutRowid = /WITHOUT\s+ROWID/i.test(sql);
    // Sorted by primary key (rowid when there is none), so a changed row changes one line.
    const orderBy = pk.length ? pk.map(quoteIdent).join(', ') : withoutRowid ? info.map((c) => quoteIdent(c.name)).join(', ') : 'rowid';
    return { name, columns: info.map((c) => c.name), pk, orderBy };
  });
}

/** schema.sql: every CREATE statement, tables first, in a stable order. */
function schemaSql(db: Database.Database): string {
  const rows = db
    .prepare(
      "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, name",
    )
    .all() as Array<{ sql: string }>;
  return rows.map((r) => `${r.sql};\n`).join('');
}

function excluded(exclude: readonly string[], db: string, table: string): boolean {
  return exclude.includes(table) || exclude.includes(`${db}.${table}`);
}

type Skipped = MirrorManifest['skipped'];

function selectAll(db: Database.Database, table: TableInfo): Database.Statement {
  return db.prepare(`SELECT ${table.columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(table.name)} ORDER BY ${table.orderBy}`).raw(true);
}

/** `<db>/<table>.jsonl`; null when it grew past the cap (then it is removed and listed). */
function writeJsonl(dir: string, file: string, db: Database.Database, table: TableInfo, maxFileBytes: number, skipped: Skipped): JsonlTableEntry | null {
  const fd = fs.openSync(path.join(dir, file), 'w');
  let bytes = 0;
  let rows = 0;
  let tooBig = false;
  // Lines are gathered into ~1 MB writes: one syscall per row would dominate the export.
  let pending = '';
  const line = rowLineWriter(table.columns);
  try {
    for (const row of selectAll(db, table).iterate() as Iterable<SqlValue[]>) {
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
  if (!tooBig) return { file, rows };
  fs.rmSync(path.join(dir, file));
  skipped.push({ path: file, reason: `larger than the per-file cap of ${maxFileBytes} bytes` });
  return null;
}

/**
 * Git must store bodies byte for byte: with core.autocrlf set (common on Windows) it would turn
 * CRLF in a body into LF. Written into each document directory, so it applies to nothing else.
 */
const DOCUMENT_GITATTRIBUTES = '*.md -text\n';

/** `<db>/<table>/<key>.md` per row; a row too large or without a usable key is listed in skipped. */
function writeDocuments(dir: string, rel: string, db: Database.Database, table: TableInfo, shape: DocumentShape, maxFileBytes: number, skipped: Skipped): DocumentTableEntry {
  fs.mkdirSync(path.join(dir, rel), { recursive: true });
  fs.writeFileSync(path.join(dir, rel, '.gitattributes'), DOCUMENT_GITATTRIBUTES);
  let rows = 0;
  for (const row of selectAll(db, table).iterate() as Iterable<SqlValue[]>) {
    const doc = renderDocument(shape, row);
    if ('reason' in doc) {
      const key = rowLine([shape.key], [row[table.columns.indexOf(shape.key)] ?? null]);
      skipped.push({ path: rel, reason: `row ${key.length > 80 ? `${key.slice(0, 67)}…` : key}: ${doc.reason}` });
      continue;
    }
    const bytes = Buffer.from(doc.text, 'utf8');
    if (bytes.length > maxFileBytes) {
      skipped.push({ path: `${rel}${doc.name}`, reason: `larger than the per-file cap of ${maxFileBytes} bytes` });
      continue;
    }
    fs.writeFileSync(path.join(dir, rel, doc.name), bytes);
    rows++;
  }
  return { dir: rel, format: 'documents', key: shape.key, body: shape.body, rows };
}

/** A full disk is the mirror's problem, not one table's: it stops the whole materialization. */
function isDiskFull(err: unknown): boolean {
  return /ENOSPC|SQLITE_FULL|disk is full/i.test(`${(err as { code?: string }).code ?? ''} ${errorMessage(err)}`);
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

/**
 * Write the readable mirror of `databases` into `dir` (which must hold nothing else of ours):
 * `<db>/schema.sql`, `<db>/<table>.jsonl` (or `<db>/<table>/<key>.md` for tables in
 * opts.documents), `manifest.json`. Each database is read in one read transaction. The same data
 * always gives byte-identical files.
 */
export function materialize(dir: string, databases: readonly VitalDatabase[], opts: MaterializeOptions): MirrorManifest {
  const manifest: MirrorManifest = { schema_version: SYNC_SCHEMA_VERSION, databases: {}, skipped: [] };
  const documents = opts.documents ?? {};
  const warnings: NonNullable<MirrorManifest['warnings']> = [];
  const seen = new Set<string>();
  for (const vital of [...databases].sort((a, b) => byCodeUnit(a.name, b.name))) {
    if (!fs.existsSync(vital.path)) {
      manifest.skipped.push({ path: mirrorDbDir(vital.name), reason: 'the database file does not exist' });
      continue;
    }
    // Every data name becomes a path only through names.ts: a table named ../../x stays inside.
    const dbDir = path.join(dir, mirrorDbDir(vital.name));
    let db: Database.Database;
    try {
      db = new Database(vital.path, { fileMustExist: true, timeout: 5000 });
    } catch (err) {
      manifest.skipped.push({ path: mirrorDbDir(vital.name), reason: `the database could not be opened: ${errorMessage(err)}` });
      continue;
    }
    db.defaultSafeIntegers(true);
    try {
      db.exec('BEGIN');
      fs.mkdirSync(dbDir, { recursive: true });
      fs.writeFileSync(path.join(dir, mirrorSchemaFile(vital.name)), schemaSql(db));
      const entry: MirrorManifest['databases'][string] = { schema: mirrorSchemaFile(vital.name), user_version: Number(db.pragma('user_version', { simple: true })), tables: {} };
      for (const table of tablesOf(db)) {
        const qualified = `${vital.name}.${table.name}`;
        const mapping = documents[qualified];
        if (mapping) seen.add(qualified);
        if (excluded(opts.exclude, vital.name, table.name)) {
          manifest.skipped.push(excludedMsg(mapping ? documentDir(vital.name, table.name) : mirrorTableFile(vital.name, table.name)));
          continue;
        }
        const shape = mapping ? documentShape(table, mapping.body) : null;
        if (shape && 'reason' in shape) warnings.push({ table: qualified, reason: `${shape.reason}; mirrored as ${mirrorTableFile(vital.name, table.name)} instead` });
        const where = shape && !('reason' in shape) ? documentDir(vital.name, table.name) : mirrorTableFile(vital.name, table.name);
        let written: MirrorTableEntry | null;
        try {
          written =
            shape && !('reason' in shape)
              ? writeDocuments(dir, where, db, table, shape, opts.maxFileBytes, manifest.skipped)
              : writeJsonl(dir, where, db, table, opts.maxFileBytes, manifest.skipped);
        } catch (err) {
          // One table that cannot be read never costs the others: listed, and its file removed.
          if (isDiskFull(err)) throw err;
          fs.rmSync(path.join(dir, where), { recursive: true, force: true });
          manifest.skipped.push({ path: where, reason: `the table could not be read: ${errorMessage(err)}` });
          continue;
        }
        if (written) entry.tables[table.name] = written;
      }
      manifest.databases[vital.name] = entry;
    } catch (err) {
      // A database that cannot be read (not SQLite, corrupt, locked) is listed; the others go on.
      if (isDiskFull(err)) throw err;
      fs.rmSync(dbDir, { recursive: true, force: true });
      manifest.skipped.push({ path: mirrorDbDir(vital.name), reason: `the database could not be read: ${errorMessage(err)}` });
    } finally {
      // A read transaction: after a corrupt page even COMMIT may fail; rolling back loses nothing.
      if (db.inTransaction) {
        try {
          db.exec('COMMIT');
        } catch {
          if (db.inTransaction) db.exec('ROLLBACK');
        }
      }
      db.close();
    }
  }
  warnings.push(...unmatchedMappings(documents, seen, databases));
  // Only written when there is something to say, so mirrors without documents keep their exact bytes.
  if (warnings.length) manifest.warnings = warnings;
  fs.writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
