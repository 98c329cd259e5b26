import fs from 'node:fs';
import Database from 'better-sqlite3';

/** Every table's rows in rowid order: equal dumps mean equal content. */
export function dumpTables(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
    return Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all()]));
  } finally {
    db.close();
  }
}

/** Bytes of the live file and its companions, to prove a refused restore touched nothing. */
export function fileState(file: string): Record<string, string | null> {
  const state: Record<string, string | null> = {};
  for (const suffix of ['', '-wal', '-shm']) {
    state[suffix || 'db'] = fs.existsSync(file + suffix) ? fs.readFileSync(file + suffix).toString('base64') : null;
  }
  return state;
}
