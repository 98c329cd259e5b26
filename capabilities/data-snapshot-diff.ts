import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { SAMPLE_ROWS_MAX, SnapshotDiffSchema, snapshotDiff } from '../src/inspect/diff.js';

const Side = z.string().min(1).describe('a snapshot id from data_backup_list, "latest" (the newest snapshot) or "live" (the databases as they are now)');

export default defineCapability({
  name: 'data_snapshot_diff',
  title: 'Compare two snapshots (or a snapshot and the live data)',
  description:
    'Show what differs between two snapshots, or between a snapshot and the live databases: per database the schema changes (tables, columns, indexes, views, triggers added, removed or changed), then per table the counts of rows added, deleted and changed (matched by primary key, or rowid where there is none), then a sample of those rows in key order with their values before and after (long values cut, their length said). ' +
    'Use it to find when data was lost or damaged (a wide DELETE, a bad migration): diff consecutive snapshots from data_backup_list until the counts show the loss, or diff a snapshot against "live" to see what changed since. ' +
    'from is the older side and to the newer: rows only in `to` are "added", rows only in `from` "deleted". Tables that are the same are only counted. A table\'s next_rows_cursor, passed back as rows_cursor, returns its next differing rows. ' +
    'It changes nothing: snapshots are rebuilt and verified into a cache under the data root (reused by later calls), and "live" is read through a consistent copy, as a backup reads it. ' +
    'Next: data_snapshot_query to look at a snapshot with SQL, or data_recover_rows to put chosen rows back (it asks for consent).',
  input: z.object({
    from: Side,
    to: Side,
    databases: z.array(z.string()).optional().describe('compare only these databases (default: all on either side)'),
    tables: z.array(z.string()).optional().describe('compare only these tables (default: all)'),
    sample: z.number().int().min(1).max(SAMPLE_ROWS_MAX).optional().describe('differing rows kept per table (default 20); the counts always cover every row'),
    rows_cursor: z.string().optional().describe("a table's next_rows_cursor from an earlier result: only that table's next differing rows are returned (counts are null on such a page)"),
  }),
  output: SnapshotDiffSchema,
  annotations: { title: 'Compare snapshots', readOnlyHint: true, openWorldHint: false },
  async run(input, ctx) {
    const result = await snapshotDiff(ctx.loadConfig(), {
      from: input.from,
      to: input.to,
      databases: input.databases,
      tables: input.tables,
      sample: input.sample,
      rowsCursor: input.rows_cursor,
      signal: ctx.signal,
    });
    const t = result.totals;
    const changedTables = result.databases.flatMap((d) => d.tables.filter((x) => (x.added ?? 0) + (x.deleted ?? 0) + (x.changed ?? 0) > 0).map((x) => `${d.name}.${x.table} (+${x.added ?? 0} -${x.deleted ?? 0} ~${x.changed ?? 0})`));
    const summary = input.rows_cursor
      ? `The next differing rows of ${result.databases[0]?.tables[0]?.table ?? 'the table'} between ${result.from} and ${result.to}.`
      : t.rows_added + t.rows_deleted + t.rows_changed + t.schema_changes === 0
        ? `${result.from} and ${result.to} hold the same rows and schema in ${t.databases} database(s).`
        : `From ${result.from} to ${result.to}: ${t.rows_added} row(s) added, ${t.rows_deleted} deleted, ${t.rows_changed} changed${t.schema_changes ? `, ${t.schema_changes} schema change(s)` : ''}${changedTables.length ? ` in ${changedTables.slice(0, 8).join(', ')}${changedTables.length > 8 ? ', …' : ''}` : ''}.`;
    return { result, summary };
  },
});
