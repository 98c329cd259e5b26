import { z } from 'zod';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { openSide, type Side } from './sides.js';
import { resolveSnapshotId } from './cache.js';
import { diffDatabaseFiles, type TableDiff } from './row-diff.js';
import type { SchemaDiff } from './schema.js';
import { keyFromJson, type KeyJson } from './values.js';

/** Differing rows kept per table unless the caller asks for another number. */
export const SAMPLE_ROWS_DEFAULT = 20;
export const SAMPLE_ROWS_MAX = 500;

export interface DiffRequest {
  /** a snapshot id, "latest" or "live" */
  from: string;
  to: string;
  databases?: string[] | undefined;
  tables?: string[] | undefined;
  /** differing rows kept per table (default 20, at most 500) */
  sample?: number | undefined;
  /** a next_rows_cursor of an earlier diff: the next rows of that one table */
  rowsCursor?: string | undefined;
  signal?: AbortSignal | undefined;
}

const ValueSchema = z.unknown().describe('null, a number, text, {integer: "digits"} beyond 2^53, {text_prefix, length} for long text, {blob_hex, bytes, cut} for a blob');
const RowSchema = z.record(z.string(), ValueSchema);

export const RowChangeSchema = z.object({
  change: z.enum(['added', 'deleted', 'changed']),
  key: RowSchema.describe('the key columns (primary key, or rowid) and their values'),
  before: RowSchema.optional().describe('the row in `from` (deleted and changed rows)'),
  after: RowSchema.optional().describe('the row in `to` (added and changed rows)'),
  columns_changed: z.array(z.string()).optional(),
});

export const TableDiffSchema = z.object({
  table: z.string(),
  kind: z.enum(['table', 'virtual']).describe("'virtual': an FTS or R*Tree table, compared through the table itself by rowid (a full-text index by its documents; its shadow tables never)"),
  key: z.array(z.string()).describe('the columns identifying rows: the primary key, or rowid when the table has none'),
  compared: z.boolean(),
  not_compared_because: z.string().optional(),
  rows_from: z.number().nullable(),
  rows_to: z.number().nullable(),
  added: z.number().nullable().describe('rows only in `to`; null on a page continued from a rows cursor'),
  deleted: z.number().nullable().describe('rows only in `from`'),
  changed: z.number().nullable().describe('rows in both with a differing value'),
  sample: z.array(RowChangeSchema).describe('differing rows in key order'),
  next_rows_cursor: z.string().nullable().describe('pass as rows_cursor for the next differing rows of this table; null when none are left'),
});

const ColumnSchema = z.object({ type: z.string(), notnull: z.boolean(), default: z.string().nullable(), pk: z.number() });

const SchemaDiffSchema = z.object({
  tables_added: z.array(z.string()),
  tables_removed: z.array(z.string()),
  tables_changed: z.array(
    z.object({
      table: z.string(),
      columns_added: z.array(z.string()),
      columns_removed: z.array(z.string()),
      columns_changed: z.array(z.object({ column: z.string(), from: ColumnSchema, to: ColumnSchema })),
      key_changed: z.boolean(),
      sql_changed: z.boolean(),
    }),
  ),
  indexes_added: z.array(z.string()),
  indexes_removed: z.array(z.string()),
  indexes_changed: z.array(z.string()),
  others_added: z.array(z.string()),
  others_removed: z.array(z.string()),
  others_changed: z.array(z.string()),
});

export const DatabaseDiffSchema = z.object({
  name: z.string(),
  status: z.enum(['compared', 'only_in_from', 'only_in_to', 'skipped']),
  reason: z.string().optional().describe('why a live database was skipped'),
  counts: z.object({ tables_differing: z.number(), tables_same: z.number(), rows_added: z.number(), rows_deleted: z.number(), rows_changed: z.number() }),
  schema: SchemaDiffSchema.nullable(),
  tables: z.array(TableDiffSchema).describe('tables whose rows differ (or could not be compared), in name order'),
});

export const SnapshotDiffSchema = z.object({
  from: z.string().describe('the snapshot id compared ("latest" resolved), or "live"'),
  to: z.string(),
  totals: z.object({ databases: z.number(), tables_differing: z.number(), rows_added: z.number(), rows_deleted: z.number(), rows_changed: z.number(), schema_changes: z.number() }),
  databases: z.array(DatabaseDiffSchema),
});
export type SnapshotDiff = z.infer<typeof SnapshotDiffSchema>;
type DatabaseDiffOut = z.infer<typeof DatabaseDiffSchema>;

interface RowsCursor {
  v: 1;
  from: string;
  to: string;
  db: string;
  table: string;
  key: KeyJson;
}

function encodeRowsCursor(c: RowsCursor): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

/** A value as keyToJson writes it: null, a finite number, text, {i: digits} or {b: hex}. */
function validKeyValue(v: unknown): boolean {
  if (v === null || typeof v === 'string') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length !== 1) return false;
  if (keys[0] === 'i') return typeof o.i === 'string' && /^-?\d+$/.test(o.i);
  if (keys[0] === 'b') return typeof o.b === 'string' && /^(?:[0-9a-f]{2})*$/i.test(o.b);
  return false;
}

function decodeRowsCursor(text: string): RowsCursor {
  try {
    const c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as RowsCursor;
    if (c.v === 1 && typeof c.from === 'string' && typeof c.to === 'string' && typeof c.db === 'string' && typeof c.table === 'string' && Array.isArray(c.key) && c.key.length > 0 && c.key.length <= 64 && c.key.every(validKeyValue)) {
      keyFromJson(c.key);
      return c;
    }
  } catch {
    /* refused below */
  }
  throw new WbError('invalid_input', 'The rows_cursor is not one data_snapshot_diff returned.', 'Pass a next_rows_cursor from a table of an earlier diff result, or diff again without rows_cursor.');
}

/**
 * A cursor carries the sides, database and table it was issued for; passed with other inputs it
 * would silently answer a different question than the one asked, so it is refused instead.
 * "latest" matches the snapshot it names now (a cursor holds resolved ids).
 * @throws WbError `invalid_input` naming what differs
 */
function refuseForeignCursor(config: Config, c: RowsCursor, req: DiffRequest): void {
  const side = (name: string): string => (name === 'live' ? 'live' : resolveSnapshotId(config.root, name));
  const differs: string[] = [];
  if (side(req.from) !== c.from) differs.push(`from ${c.from}`);
  if (side(req.to) !== c.to) differs.push(`to ${c.to}`);
  if (req.databases && !req.databases.includes(c.db)) differs.push(`database ${c.db}`);
  if (req.tables && !req.tables.some((t) => t.toLowerCase() === c.table.toLowerCase())) differs.push(`table ${c.table}`);
  if (!differs.length) return;
  throw new WbError(
    'invalid_input',
    `The rows_cursor belongs to another diff (${differs.join(', ')}) than the one asked for (from ${req.from}, to ${req.to}${req.databases ? `, databases ${req.databases.join(', ')}` : ''}${req.tables ? `, tables ${req.tables.join(', ')}` : ''}).`,
    `Pass the rows_cursor with the from, to, database and table it was returned for (from ${c.from}, to ${c.to}, database ${c.db}, table ${c.table}), or diff these sides again without rows_cursor.`,
  );
}

function schemaChangeCount(s: SchemaDiff | DatabaseDiffOut['schema'] & object): number {
  return Object.values(s).reduce((n, v) => n + (v as unknown[]).length, 0);
}

/**
 * data_snapshot_diff: what differs between two sides (snapshot ids, "latest" or "live"), per
 * database: schema changes, then per table the counts of rows added, deleted and changed (by key)
 * and a sample of those rows in key order, with a cursor per table for the next rows. Reads
 * only: snapshots are rebuilt into the cache (inspect/cache), the live side is a hot copy.
 * @throws WbError `not_found` (a snapshot), `invalid_input` (a cursor, or from/to unusable), `busy`, and the export's errors
 */
export async function snapshotDiff(config: Config, req: DiffRequest): Promise<SnapshotDiff> {
  const cursor = req.rowsCursor ? decodeRowsCursor(req.rowsCursor) : null;
  if (cursor) refuseForeignCursor(config, cursor, req);
  const fromName = cursor?.from ?? req.from;
  const toName = cursor?.to ?? req.to;
  const sample = Math.min(Math.max(1, req.sample ?? SAMPLE_ROWS_DEFAULT), SAMPLE_ROWS_MAX);
  const wantedDbs = cursor ? [cursor.db] : req.databases;
  let from: Side | null = null;
  let to: Side | null = null;
  try {
    from = await openSide(config, fromName, wantedDbs, req.signal);
    to = await openSide(config, toName, wantedDbs, req.signal);
    const names = [...new Set([...from.databases, ...to.databases])].sort();
    if (wantedDbs) {
      const unknown = wantedDbs.filter((n) => !names.includes(n));
      if (unknown.length) throw new WbError('invalid_input', `Neither side has a database named ${unknown.join(', ')}.`, `They hold: ${[...new Set([...from.databases, ...to.databases])].join(', ') || 'no database'}.`);
    }
    const out: DatabaseDiffOut[] = [];
    const tableNames = new Set<string>();
    for (const name of names) {
      req.signal?.throwIfAborted();
      out.push(await diffOne(from, to, name, { sample, tables: req.tables, cursor, signal: req.signal, seen: tableNames }));
    }
    // A table named in `tables` that no database compared has would read as "no difference".
    const compared = out.some((d) => d.status === 'compared');
    const unknownTables = !cursor && compared ? (req.tables ?? []).filter((t) => !tableNames.has(t.toLowerCase())) : [];
    if (unknownTables.length) {
      throw new WbError('invalid_input', `No database compared has a table named ${unknownTables.join(', ')}.`, `Tables: ${[...tableNames].sort().slice(0, 30).join(', ') || 'none'}.`);
    }
    const totals = {
      databases: out.length,
      tables_differing: out.reduce((n, d) => n + d.counts.tables_differing, 0),
      rows_added: out.reduce((n, d) => n + d.counts.rows_added, 0),
      rows_deleted: out.reduce((n, d) => n + d.counts.rows_deleted, 0),
      rows_changed: out.reduce((n, d) => n + d.counts.rows_changed, 0),
      schema_changes: out.reduce((n, d) => n + (d.schema ? schemaChangeCount(d.schema) : 0), 0),
    };
    return { from: from.label, to: to.label, totals, databases: out };
  } finally {
    from?.close();
    to?.close();
  }
}

const zeroCounts = { tables_differing: 0, tables_same: 0, rows_added: 0, rows_deleted: 0, rows_changed: 0 };

async function diffOne(from: Side, to: Side, name: string, o: { sample: number; tables: string[] | undefined; cursor: RowsCursor | null; signal: AbortSignal | undefined; seen: Set<string> }): Promise<DatabaseDiffOut> {
  if (!to.databases.includes(name)) return { name, status: 'only_in_from', counts: zeroCounts, schema: null, tables: [] };
  if (!from.databases.includes(name)) return { name, status: 'only_in_to', counts: zeroCounts, schema: null, tables: [] };
  let a: string;
  let b: string;
  try {
    a = await from.file(name);
    b = await to.file(name);
  } catch (err) {
    const why = from.skipped[name] ?? to.skipped[name];
    if (why) return { name, status: 'skipped', reason: why, counts: zeroCounts, schema: null, tables: [] };
    throw err;
  }
  const c = o.cursor;
  const d = diffDatabaseFiles(a, b, {
    sample: o.sample,
    tables: o.tables,
    after: c ? { table: c.table, key: c.key, keyValues: keyFromJson(c.key) } : undefined,
    cursor: (table, key) => encodeRowsCursor({ v: 1, from: from.label, to: to.label, db: name, table, key }),
    signal: o.signal,
  });
  for (const t of d.names) o.seen.add(t.toLowerCase());
  const tables = d.tables as TableDiff[];
  return {
    name,
    status: 'compared',
    counts: {
      tables_differing: tables.length,
      tables_same: d.tables_same,
      rows_added: tables.reduce((n, t) => n + (t.added ?? 0), 0),
      rows_deleted: tables.reduce((n, t) => n + (t.deleted ?? 0), 0),
      rows_changed: tables.reduce((n, t) => n + (t.changed ?? 0), 0),
    },
    schema: d.schema,
    tables,
  };
}
