import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { QUERY_ROWS_MAX, QueryResultSchema, snapshotQuery } from '../src/inspect/query.js';

export default defineCapability({
  name: 'data_snapshot_query',
  title: 'Read a snapshot with SQL',
  description:
    'Run one read-only SQL statement (SELECT, or WITH … SELECT; introspection PRAGMAs such as table_info) against one database of a snapshot, as it was when the snapshot was taken. ' +
    'Use it after data_snapshot_diff to look closer at what a snapshot held: the rows a DELETE took, the values before a bad migration, the children of a deleted row. ' +
    'Returns the column names and up to max_rows rows (default 100), values bounded (long text cut, its length said); when more is true, call again with the same sql and offset: next_offset. ' +
    'It changes nothing and never opens the live files: the snapshot is rebuilt and verified into a cache under the data root, opened read-only, and writes (INSERT, UPDATE, DELETE, CREATE), ATTACH, VACUUM, PRAGMAs that set a value, load_extension and several statements at once are refused; a query running longer than the time limit (5 s by default) is stopped. ' +
    'Next: data_recover_rows to put chosen rows back into the live database (it asks for consent).',
  input: z.object({
    snapshot_id: z.string().min(1).describe('a snapshot id from data_backup_list, or "latest"'),
    database: z.string().min(1).describe('the database name, as data_backup_list or data_snapshot_diff shows it'),
    sql: z.string().min(1).max(100_000).describe('one read-only statement, e.g. SELECT * FROM tasks WHERE project_id = 3'),
    max_rows: z.number().int().min(1).max(QUERY_ROWS_MAX).optional().describe('rows returned (default 100)'),
    offset: z.number().int().min(0).optional().describe('rows skipped first: the next_offset of the previous call with the same sql'),
  }),
  output: QueryResultSchema,
  annotations: { title: 'Read a snapshot with SQL', readOnlyHint: true, openWorldHint: false },
  async run(input, ctx) {
    const result = await snapshotQuery(ctx.loadConfig(), { snapshotId: input.snapshot_id, database: input.database, sql: input.sql, maxRows: input.max_rows, offset: input.offset, signal: ctx.signal });
    const summary = `${result.rows.length} row(s) from ${result.database} in ${result.snapshot_id}${result.offset ? ` after ${result.offset}` : ''}${result.more ? `; more rows follow: call again with offset: ${result.next_offset}` : ''}.`;
    return { result, summary };
  },
});
