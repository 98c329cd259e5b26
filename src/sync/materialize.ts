import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { VitalDatabase } from '../config.js';
import { quoteIdent } from '../sqlite-util.js';
import { rowLine, type SqlValue } from './rows.js';

export const SYNC_SCHEMA_VERSION = 1;

export interface MirrorManifest {
  schema_version: number;
  databases: Record<string, { schema: string; user_version: number; tables: Record<string, { file: string; rows: number }> }>;
  skipped: Array<{ path: string; reason: string }>;
}

interface TableInfo {
  name: string;
  columns: string[];
  orderBy: string;
}

function tablesOf(db: Database.Database): TableInfo[] {
  const names = db
    .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name")
    .all() as Array<{ name: string; sql: string }>;
  return names.map(({ name, sql }) => {
    const info = db.prepare(`PRAGMA table_info(${quoteIdent(name)})`).all() as Array<{ name: string; pk: number }>;
    const pk = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => quoteIdent(c.name));
    const withoutRowid = /WITHOUT\s+ROWID/i.test(sql);
    // Sorted by primary key (rowid when there is none), so a changed row changes one line.
    const orderBy = pk.length ? pk.join(', ') : withoutRowid ? info.map((c) => quoteIdent(c.name)).join(', ') : 'rowid';
    return { name, columns: info.map((c) => c.name), orderBy };
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

/**
 * Write the readable mirror of `databases` into `dir` (which must hold nothing else of ours):
 * `<db>/schema.sql`, `<db>/<table>.jsonl`, `manifest.json`. Each database is read in one read
 * transaction. The same data always gives byte-identical files.
 */
export function materialize(dir: string, databases: readonly VitalDatabase[], opts: { exclude: readonly string[]; maxFileBytes: number }): MirrorManifest {
  const manifest: MirrorManifest = { schema_version: SYNC_SCHEMA_VERSION, databases: {}, skipped: [] };
  for (const vital of [...databases].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!fs.existsSync(vital.path)) {
      manifest.skipped.push({ path: vital.name, reason: 'the database file does not exist' });
      continue;
    }
    const db = new Database(vital.path, { fileMustExist: true, timeout: 5000 });
    db.defaultSafeIntegers(true);
    try {
      db.exec('BEGIN');
      const out = path.join(dir, vital.name);
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, 'schema.sql'), schemaSql(db));
      const entry: MirrorManifest['databases'][string] = { schema: `${vital.name}/schema.sql`, user_version: Number(db.pragma('user_version', { simple: true })), tables: {} };
      for (const table of tablesOf(db)) {
        const file = `${vital.name}/${table.name}.jsonl`;
        if (excluded(opts.exclude, vital.name, table.name)) {
          manifest.skipped.push({ path: file, reason: 'excluded by sync.github.exclude_tables' });
          continue;
        }
        const stmt = db.prepare(`SELECT ${table.columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(table.name)} ORDER BY ${table.orderBy}`).raw(true);
        const fd = fs.openSync(path.join(dir, file), 'w');
        let bytes = 0;
        let rows = 0;
        let tooBig = false;
        // Lines are gathered into ~1 MB writes: one syscall per row would dominate the export.
        let pending = '';
        try {
          for (const row of stmt.iterate() as Iterable<SqlValue[]>) {
            pending += `${rowLine(table.columns, row)}\n`;
            if (pending.length > 1 << 20) {
              bytes += fs.writeSync(fd, pending);
              pending = '';
              if (bytes > opts.maxFileBytes) {
                tooBig = true;
                break;
              }
            }
            rows++;
          }
          if (!tooBig && pending) bytes += fs.writeSync(fd, pending);
          if (bytes > opts.maxFileBytes) tooBig = true;
        } finally {
          fs.closeSync(fd);
        }
        if (tooBig) {
          fs.rmSync(path.join(dir, file));
          manifest.skipped.push({ path: file, reason: `larger than the per-file cap of ${opts.maxFileBytes} bytes` });
          continue;
        }
        entry.tables[table.name] = { file, rows };
      }
      manifest.databases[vital.name] = entry;
    } finally {
      if (db.inTransaction) db.exec('COMMIT');
      db.close();
    }
  }
  fs.writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
