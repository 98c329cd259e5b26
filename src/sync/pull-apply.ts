/**
 * Pull's write: the merged rows of one database in one transaction, exactly those rows (foreign-key
 * actions off, violations the pull introduced refused).
 */
import Database from 'better-sqlite3';
import { quoteIdent } from '../core/sqlite-util.js';

/** The foreign-key violations in `tables` (`PRAGMA foreign_key_check`), counted per comparable key (table, rowid, parent, key id). */
function violationKeys(db: Database.Database, tables: ReadonlySet<string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const table of tables) {
    for (const v of db.prepare(`PRAGMA foreign_key_check(${quoteIdent(table)})`).all() as Array<{ table: string; rowid: unknown; parent: string; fkid: unknown }>) {
      // WITHOUT ROWID tables report no rowid: counted per table, parent and key instead.
      const key = JSON.stringify([v.table, v.rowid === null ? null : String(v.rowid), v.parent, String(v.fkid)]);
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return out;
}

/**
 * Apply a pull's row changes to one database in one transaction, so that exactly the merged rows
 * change: foreign-key ACTIONS (ON DELETE CASCADE, SET NULL, SET DEFAULT) must not run, since they
 * would change rows the remote still holds (a parent deleted on GitHub would delete its children
 * here, and the next push on the remote). Foreign keys are therefore off while applying (the
 * pragma only takes effect outside a transaction) and checked afterwards: a violation the pulled
 * rows introduced throws (the transaction rolls back, nothing is applied); one the database held
 * before (SQLite leaves foreign keys off by default) is not the pull's doing and is kept.
 * Triggers do fire: they are the database's own rules (see docs/github-sync.md#pull).
 * `tables`: the tables written. Throws the reason on a violation or a constraint error.
 */
export function applyExactly(db: Database.Database, tables: readonly string[], apply: () => void): void {
  const written = new Set(tables);
  // A write can break a key in the written tables (a new child) and in tables referring to them (a deleted parent).
  const affected = new Set(written);
  for (const t of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[]) {
    const parents = db.prepare(`SELECT "table" FROM pragma_foreign_key_list(?)`).pluck().all(t) as string[];
    if (parents.some((p) => [...written].some((w) => w.toLowerCase() === p.toLowerCase()))) affected.add(t);
  }
  const wasOn = Number(db.pragma('foreign_keys', { simple: true })) === 1;
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      const before = violationKeys(db, affected);
      apply();
      const introduced = [...violationKeys(db, affected)].filter(([k, n]) => n > (before.get(k) ?? 0)).map(([k]) => JSON.parse(k) as [string, string | null, string]);
      if (introduced.length) {
        const [t, rowid, parent] = introduced[0]!;
        throw new Error(`FOREIGN KEY constraint failed: ${introduced.length} row(s) would refer to rows that do not exist, e.g. ${t}${rowid === null ? '' : ` rowid ${rowid}`} -> ${parent}`);
      }
    })();
  } finally {
    if (wasOn) db.pragma('foreign_keys = ON');
  }
}
