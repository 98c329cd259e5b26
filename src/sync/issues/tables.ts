/**
 * The task tables the issues transport maps, read from the databases: each row by its key (the
 * primary key as its JSON line, as conflicts name rows), and rows rebuilt from an issue view so the
 * shared three-way merge (pull-merge.ts) can compare them with the database's.
 */
import Database from 'better-sqlite3';
import { WbError } from '../../core/errors.js';
import { quoteIdent } from '../../core/sqlite-util.js';
import type { Config } from '../../root/config.js';
import type { IssuesSyncConfig, IssueTableMapping } from '../../root/sync-issues-schema.js';
import { readRows } from '../materialize.js';
import { parseRows, rowLine, type SqlValue } from '../rows.js';
import { tableShape, type TableShape } from '../sqlite-objects.js';
import { fieldText, rowView, VIEW_FIELDS, viewColumns, type IssueView } from './mapping.js';

export interface TaskTable {
  /** "db.table" */
  label: string;
  db: string;
  table: string;
  mapping: IssueTableMapping;
}

export function mappedTables(cfg: IssuesSyncConfig): TaskTable[] {
  return Object.entries(cfg.tables).map(([label, mapping]) => {
    const [db, table] = label.split('.') as [string, string];
    return { label, db, table, mapping };
  });
}

/** A configured database by name; WbError config_invalid when sync.issues names one that is not there. */
export function openDatabase(config: Config, name: string, readonly: boolean): Database.Database {
  const vital = config.databases.find((d) => d.name === name);
  if (!vital) throw new WbError('config_invalid', `sync.issues maps a table of database "${name}", which is not one of the backed-up databases.`, `Use one of: ${config.databases.map((d) => d.name).join(', ') || '(none)'}.`);
  const db = new Database(vital.path, { readonly, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

export interface LiveRow {
  /** the primary key as its JSON line, e.g. {"id":5} */
  key: string;
  values: SqlValue[];
  record: Record<string, SqlValue>;
  line: string;
}

/** A table's shape, refusing what cannot be mapped (missing, no primary key, missing columns). */
export function mappableShape(db: Database.Database, where: string, table: string, columns: readonly (string | undefined)[]): TableShape {
  const shape = tableShape(db, table);
  if (!shape || shape.kind !== 'table') throw new WbError('config_invalid', `sync.issues maps ${where}, which is not a table.`, 'Check the "db.table" names under sync.issues.tables.');
  if (!shape.pk.length) throw new WbError('config_invalid', `${where} has no primary key, so its rows cannot be matched to issues.`, 'Map only tables with a primary key.');
  const missing = columns.filter((c): c is string => c !== undefined && !shape.columns.includes(c));
  if (missing.length) throw new WbError('config_invalid', `sync.issues maps columns ${where} does not have: ${missing.join(', ')}.`, `Its columns: ${shape.columns.join(', ')}.`);
  return shape;
}

export function keyOfValues(shape: TableShape, values: readonly SqlValue[]): string {
  return rowLine(shape.pk, shape.pk.map((c) => values[shape.columns.indexOf(c)] ?? null));
}

function live(shape: TableShape, values: SqlValue[]): LiveRow {
  const record: Record<string, SqlValue> = {};
  shape.columns.forEach((c, i) => (record[c] = values[i] ?? null));
  return { key: keyOfValues(shape, values), values, record, line: rowLine(shape.columns, values) };
}

/** Every row of the table by key, read as the git mirror reads them. */
export function liveRows(db: Database.Database, shape: TableShape): Map<string, LiveRow> {
  const out = new Map<string, LiveRow>();
  for (const values of readRows(db, { ...shape, rowid: null })) {
    const r = live(shape, values);
    out.set(r.key, r);
  }
  return out;
}

export function rowFromLine(shape: TableShape, line: string): LiveRow | null {
  try {
    const [values] = parseRows(`${line}\n`, 'issues state', shape.columns);
    return values ? live(shape, values) : null;
  } catch {
    return null;
  }
}

/** A view's text back in a column: as an integer or a number where the column held one, else text. */
function coerce(text: string | null, current: SqlValue): SqlValue {
  if (text === null) return null;
  if (typeof current === 'bigint' && /^-?\d+$/.test(text)) return BigInt(text);
  if (typeof current === 'number' && text.trim() !== '' && Number.isFinite(Number(text))) return Number(text);
  return text;
}

/**
 * `src` with the mapped columns showing `view`: a field the view shows as `src` already does keeps
 * its exact value (NULL stays NULL, 2 stays an integer); others take the view's text.
 */
export function rowWithView(shape: TableShape, src: LiveRow, view: IssueView, m: IssueTableMapping): SqlValue[] {
  const current = rowView(src.record, m);
  const changed = VIEW_FIELDS.filter((f) => fieldText(current, f) !== fieldText(view, f));
  const out = [...src.values];
  for (const [col, text] of Object.entries(viewColumns(view, changed, m))) {
    const i = shape.columns.indexOf(col);
    if (i >= 0) out[i] = coerce(text, src.values[i] ?? null);
  }
  return out;
}

/** `src` with one column set (a comment's text). */
export function rowWithColumn(shape: TableShape, src: LiveRow, column: string, value: string): SqlValue[] {
  const out = [...src.values];
  const i = shape.columns.indexOf(column);
  if (i >= 0 && (typeof src.values[i] !== 'string' || src.values[i] !== value)) out[i] = value;
  return out;
}

/**
 * A new child row for a comment a person wrote on GitHub: the parent key, the text, each other
 * column's declared default (NULL without one), and a key: the next integer for a single INTEGER
 * key, else "github-comment-<id>". `taken`: keys handed out in this pull already.
 */
export function newChildRow(db: Database.Database, shape: TableShape, parentColumn: string, parentValue: SqlValue, bodyColumn: string, body: string, commentId: number, taken: Set<string>): SqlValue[] | { reason: string } {
  if (shape.pk.length !== 1) return { reason: `${shape.name} has a composite primary key: a comment made on GitHub cannot be given one` };
  const info = db.prepare(`SELECT name, type, dflt_value FROM pragma_table_info(?)`).all(shape.name) as Array<{ name: string; type: string; dflt_value: string | null }>;
  const values: SqlValue[] = shape.columns.map((c) => {
    const d = info.find((x) => x.name === c)?.dflt_value;
    if (d === null || d === undefined) return null;
    try {
      return db.prepare(`SELECT ${d}`).safeIntegers(true).pluck().get() as SqlValue;
    } catch {
      return null;
    }
  });
  const pk = shape.pk[0]!;
  const integer = /INT/i.test(info.find((x) => x.name === pk)?.type ?? '');
  let key: SqlValue;
  if (integer) {
    const max = db.prepare(`SELECT max(${quoteIdent(pk)}) FROM ${quoteIdent(shape.name)}`).safeIntegers(true).pluck().get() as bigint | null;
    let next = (max ?? 0n) + 1n;
    while (taken.has(next.toString())) next++;
    key = next;
  } else key = `github-comment-${commentId}`;
  taken.add(String(key));
  values[shape.columns.indexOf(pk)] = key;
  values[shape.columns.indexOf(parentColumn)] = parentValue;
  values[shape.columns.indexOf(bodyColumn)] = body;
  return values;
}
