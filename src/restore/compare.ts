import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import Database from 'better-sqlite3';
import { countRows } from '../core/sqlite-util.js';
import { fingerprintTarget, canonicalJson } from '../root/consent.js';

/**
 * What a person weighs before saying yes to a restore or an undo: per table, the rows the live
 * database holds now against the rows it will hold after, and what is lost. Live databases are
 * never opened: their files (and -wal, -journal) are copied into a scratch folder, and the copy is
 * opened, so a dry run changes no byte of them (opening the live file could roll back a hot journal
 * or fold the -wal in).
 */

/** Tables listed per database; the rest are counted in `more_tables`. */
export const MAX_TABLES_SHOWN = 20;

export const TableComparisonSchema = z.object({
  table: z.string(),
  live: z.number().nullable().describe('rows now (null: the table does not exist live)'),
  after: z.number().nullable().describe('rows after (null: the table will not exist)'),
  difference: z.number().describe('after minus live'),
});

export const RowComparisonSchema = z.object({
  live_state: z.enum(['read', 'absent', 'unreadable']).describe('whether the live rows could be counted (absent: there is no live file yet)'),
  live_note: z.string().nullable().describe('why the live rows could not be counted'),
  live_total: z.number().nullable(),
  after_total: z.number(),
  rows_lost: z.number().describe('rows the live database has beyond what it will have: added or kept since, per table (live minus after, where positive), tables only live included'),
  rows_gained: z.number().describe('rows it will have beyond the live ones'),
  tables_only_live: z.array(z.string()).describe('tables that exist live and will not after (capped list)'),
  tables: z.array(TableComparisonSchema).describe('per table, those that differ first (capped)'),
  more_tables: z.number().describe('tables not listed in `tables`'),
});
export type RowComparison = z.infer<typeof RowComparisonSchema>;
export type LiveRows = { state: 'read'; rows: Record<string, number> } | { state: 'absent' } | { state: 'unreadable'; note: string };

const COMPANIONS = ['', '-wal', '-journal'] as const;

/**
 * The row counts of `file` as a reader would see them now, from a copy. The copy is retried when
 * the file changed while it was being copied (a writer at work); after 3 tries it is `unreadable`.
 * @param scratchParent a folder to make the scratch copy in (default: the system temp folder); removed after
 */
export function readRowsByCopy(file: string, scratchParent = os.tmpdir()): LiveRows {
  if (!fs.existsSync(file)) return { state: 'absent' };
  let lastNote = 'it kept changing while it was read';
  for (let attempt = 0; attempt < 3; attempt++) {
    const scratch = fs.mkdtempSync(path.join(scratchParent, '.row-count-'));
    try {
      const before = canonicalJson(fingerprintTarget(file));
      const copy = path.join(scratch, 'copy.db');
      for (const suffix of COMPANIONS) {
        if (fs.existsSync(file + suffix)) fs.copyFileSync(file + suffix, copy + suffix, fs.constants.COPYFILE_FICLONE);
      }
      if (canonicalJson(fingerprintTarget(file)) !== before) continue;
      const db = new Database(copy, { fileMustExist: true });
      try {
        return { state: 'read', rows: countRows(db) };
      } finally {
        db.close();
      }
    } catch (err) {
      lastNote = `it could not be read (${(err as Error).message})`;
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  }
  return { state: 'unreadable', note: lastNote };
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/**
 * The shadow tables of full-text indexes, by the suffixes SQLite gives them: an FTS5 table X always
 * has X_data, X_idx and X_config (X_content and X_docsize unless made contentless or without
 * column sizes); an FTS3/4 table always has X_segments and X_segdir (X_content, X_docsize, X_stat
 * depending on its options).
 */
const FTS_SHADOWS = [
  { always: ['_data', '_idx', '_config'], maybe: ['_content', '_docsize'] },
  { always: ['_segments', '_segdir'], maybe: ['_content', '_docsize', '_stat'] },
] as const;

/**
 * Row counts as a person thinks of them: each full-text index's shadow tables (its internal
 * storage: index segments, configuration, a copy of the text) are left out, and the index counts
 * once under its own name, with one row per document (from X_docsize, else X_content; not at all
 * when it keeps neither). Every other table is kept as it is. Works on the counts alone (the
 * counts of a snapshot come without its schema), recognising an index by its complete set of
 * shadow tables.
 * @param rows table name -> rows, as countRows gives them (virtual tables absent, shadows present)
 */
export function foldFtsShadowTables(rows: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { ...rows };
  for (const name of Object.keys(rows)) {
    for (const kind of FTS_SHADOWS) {
      const first = kind.always[0];
      if (!name.endsWith(first)) continue;
      const base = name.slice(0, -first.length);
      if (!base || !kind.always.every((suffix) => Object.hasOwn(rows, base + suffix))) continue;
      const docs = rows[`${base}_docsize`] ?? rows[`${base}_content`];
      for (const suffix of [...kind.always, ...kind.maybe]) delete out[base + suffix];
      // A real table of the index's own name (never made by SQLite) keeps its count.
      if (docs !== undefined && !Object.hasOwn(rows, base)) out[base] = docs;
    }
  }
  return out;
}

/**
 * Live rows against the rows after the operation, per table; bounded (see MAX_TABLES_SHOWN).
 * Full-text indexes count once, by their documents (see foldFtsShadowTables), never by the rows of
 * their shadow tables: rebuilding an index is not a loss of data.
 */
export function compareRows(live: LiveRows, afterRaw: Record<string, number>): RowComparison {
  const after = foldFtsShadowTables(afterRaw);
  const liveRows = live.state === 'read' ? foldFtsShadowTables(live.rows) : live.state === 'absent' ? {} : null;
  const names = [...new Set([...Object.keys(liveRows ?? {}), ...Object.keys(after)])].sort();
  const all = names.map((table) => {
    const l = liveRows ? (liveRows[table] ?? null) : null;
    const a = after[table] ?? null;
    return { table, live: l, after: a, difference: (a ?? 0) - (l ?? 0) };
  });
  const lost = liveRows ? all.reduce((n, t) => n + Math.max(0, -t.difference), 0) : 0;
  const gained = liveRows ? all.reduce((n, t) => n + Math.max(0, t.difference), 0) : 0;
  const onlyLive = liveRows ? all.filter((t) => t.after === null && t.live !== null).map((t) => t.table) : [];
  // Tables that change come first: they are what a person needs to see.
  const ordered = liveRows ? [...all.filter((t) => t.difference !== 0 || t.live === null || t.after === null), ...all.filter((t) => t.difference === 0 && t.live !== null && t.after !== null)] : all;
  return {
    live_state: live.state,
    live_note: live.state === 'unreadable' ? live.note : null,
    live_total: liveRows ? sum(liveRows) : null,
    after_total: sum(after),
    rows_lost: lost,
    rows_gained: gained,
    tables_only_live: onlyLive.slice(0, MAX_TABLES_SHOWN),
    tables: ordered.slice(0, MAX_TABLES_SHOWN),
    more_tables: Math.max(0, ordered.length - MAX_TABLES_SHOWN),
  };
}

/** "just now", "42 s ago", "12 min ago", "3 h 12 min ago", "2 d 4 h ago"; "in the future" for a clock ahead. */
export function formatAge(ms: number): string {
  if (ms < 0) return 'in the future (the clocks differ)';
  const s = Math.floor(ms / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h} h ${min % 60} min ago`;
  return `${Math.floor(h / 24)} d ${h % 24} h ago`;
}

const n = (x: number) => `${x} row${x === 1 ? '' : 's'}`;

/**
 * One database's comparison as plain lines for prompts and dry-run output, e.g.
 * "notes: 40 live -> 25 (-15)". `what`: the phrase for the after state ("snapshot", "restored").
 */
export function describeComparison(c: RowComparison, what: string): string[] {
  if (c.live_state === 'absent') return [`no live file yet: nothing is lost; ${n(c.after_total)} from the ${what}`];
  if (c.live_state === 'unreadable') return [`live rows could not be counted (${c.live_note}); the ${what} has ${n(c.after_total)}`];
  const change = (t: RowComparison['tables'][number]) =>
    t.difference ? `${t.difference > 0 ? '+' : ''}${t.difference}${t.after === null ? ', table goes away' : t.live === null ? ', table comes back' : ''}` : t.after === null ? 'table goes away' : t.live === null ? 'table comes back' : 'same';
  const lines = c.tables.map((t) => `${t.table}: ${t.live === null ? 'not live' : `${t.live} live`} -> ${t.after === null ? `not in the ${what}` : `${t.after} ${what}`} (${change(t)})`);
  if (c.more_tables) lines.push(`… and ${c.more_tables} more table(s)`);
  return lines;
}

/** "You lose 15 rows (…)" or "No live rows are lost", stated plainly. */
export function describeLoss(c: RowComparison, since: string): string {
  if (c.live_state === 'absent') return 'nothing is lost (there is no live file yet)';
  if (c.live_state === 'unreadable') return `what is lost is unknown: the live rows could not be counted (${c.live_note})`;
  const only = c.tables_only_live.length ? `; tables that exist only live and go away: ${c.tables_only_live.join(', ')}` : '';
  const lost = c.rows_lost ? `${n(c.rows_lost)} added ${since} ${c.rows_lost === 1 ? 'is' : 'are'} lost` : 'no live rows are lost';
  return `${lost}${only}, and every change made ${since} to rows that remain is undone too`;
}
