import type Database from 'better-sqlite3';

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Row count of every ordinary table (virtual tables left out: their shadow tables are counted). */
export function countRows(db: Database.Database): Record<string, number> {
  const tables = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name")
    .pluck()
    .all() as string[];
  return Object.fromEntries(tables.map((t) => [t, Number(db.prepare(`SELECT count(*) FROM ${quoteIdent(t)}`).pluck().get())]));
}
