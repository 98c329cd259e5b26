import Database from 'better-sqlite3';
import { showValue, type ShownValue } from './values.js';

/** What the query process is asked. */
export interface QueryChildRequest {
  /** the cached, verified image of the snapshot's database (never a live file) */
  file: string;
  sql: string;
  maxRows: number;
  offset: number;
  /** characters of a text value shown before it is cut */
  textShown: number;
}

export type QueryAnswer =
  | { ok: true; columns: string[]; rows: ShownValue[][]; more: boolean }
  | { ok: false; refused: boolean; message: string };

/** Introspection pragmas a query may read (never with `=`): they change nothing. */
const READ_PRAGMAS = new Set([
  'table_info', 'table_xinfo', 'table_list', 'index_list', 'index_info', 'index_xinfo', 'foreign_key_list', 'foreign_key_check',
  'integrity_check', 'quick_check', 'user_version', 'application_id', 'schema_version', 'page_size', 'page_count', 'freelist_count',
  'encoding', 'database_list', 'collation_list', 'function_list', 'module_list', 'pragma_list', 'compile_options', 'data_version',
]);

/** The first keyword of a statement, after comments and white space, upper case. */
function firstWords(sql: string): string[] {
  const text = sql.replace(/--[^\n]*(\n|$)/g, ' ').replace(/\/\*[\s\S]*?(\*\/|$)/g, ' ').trim();
  return text.split(/[\s(;=]+/).filter(Boolean).slice(0, 2);
}

/**
 * Why `sql` is refused before it is prepared, or null. ATTACH and DETACH count as read-only to
 * SQLite (they change no database file) yet ATTACH opens any file; PRAGMAs that set something
 * (writable_schema, journal_mode, ...) are refused whatever SQLite says of them.
 */
export function refusal(sql: string): string | null {
  const [first, second] = firstWords(sql).map((w) => w.toUpperCase());
  if (!first) return 'the query is empty';
  if (first === 'ATTACH' || first === 'DETACH') return `${first} is refused: a query reads the one snapshot database it was given, never another file`;
  if (first === 'VACUUM') return 'VACUUM is refused: it writes (VACUUM INTO writes a new file)';
  if (first === 'PRAGMA') {
    if (/=/.test(sql)) return 'a PRAGMA that sets a value is refused: queries only read';
    const name = (second ?? '').replace(/^[^.]*\./, '').replace(/["`[\]]/g, '').toLowerCase();
    if (!READ_PRAGMAS.has(name)) return `PRAGMA ${name || '(none)'} is refused: only introspection pragmas are allowed (${[...READ_PRAGMAS].slice(0, 8).join(', ')}, …)`;
  }
  return null;
}

/**
 * Opens the file read-only, prepares `sql` (one statement), refuses anything that is not a
 * read-only statement returning rows, then reads at most maxRows rows after `offset`, each value
 * bounded (values.ts). `started` is called just before rows are read (the time limit starts then).
 */
export function checkAndRun(req: QueryChildRequest, started: () => void): QueryAnswer {
  const why = refusal(req.sql);
  if (why) return { ok: false, refused: true, message: why };
  let db: Database.Database | null = null;
  try {
    db = new Database(req.file, { readonly: true, fileMustExist: true });
    db.defaultSafeIntegers(true);
    let stmt: Database.Statement;
    try {
      stmt = db.prepare(req.sql);
    } catch (err) {
      const message = (err as Error).message;
      if (/more than one statement/.test(message)) return { ok: false, refused: true, message: 'several statements were given: a query is one SELECT (or WITH … SELECT) statement' };
      return { ok: false, refused: false, message: `SQLite could not prepare the query: ${message}` };
    }
    if (!stmt.readonly) return { ok: false, refused: true, message: 'the statement writes (INSERT, UPDATE, DELETE, CREATE, …): queries only read' };
    if (!stmt.reader) return { ok: false, refused: true, message: 'the statement returns no rows (BEGIN, SAVEPOINT, …): a query is one SELECT (or WITH … SELECT) statement' };
    const columns = stmt.columns().map((c) => c.name);
    const rows: ShownValue[][] = [];
    let seen = 0;
    let more = false;
    started();
    for (const row of stmt.raw(true).iterate() as IterableIterator<unknown[]>) {
      if (seen++ < req.offset) continue;
      if (rows.length === req.maxRows) {
        more = true;
        break;
      }
      rows.push(row.map((v) => showValue(v, req.textShown)));
    }
    return { ok: true, columns, rows, more };
  } catch (err) {
    const message = (err as Error).message;
    return { ok: false, refused: /not authorized/.test(message), message: /not authorized/.test(message) ? `refused by SQLite: ${message} (load_extension and other unsafe functions are disabled)` : `the query failed: ${message}` };
  } finally {
    db?.close();
  }
}
