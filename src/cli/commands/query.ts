import type { Command } from 'commander';
import { loadConfig } from '../../root/config.js';
import { shutdownSignal, track } from '../../core/shutdown.js';
import { snapshotQuery } from '../../inspect/query.js';
import { rootOf } from '../root.js';
import { out } from '../output.js';

/**
 * `wb-backup query <id> --db <name> "SQL"`: one read-only statement against a database of a
 * snapshot, rebuilt into the cache; the live files are never opened (src/inspect/query.ts).
 */
export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('run one read-only SQL statement against a database of a snapshot (never the live files)')
    .argument('<snapshot-id>', 'a snapshot id from `wb-backup list`, or "latest"')
    .argument('<sql>', 'one SELECT (or WITH … SELECT) statement')
    .requiredOption('--db <name>', 'the database to read')
    .option('--limit <n>', 'rows shown (default 100, at most 1000)', (v) => Number.parseInt(v, 10))
    .option('--offset <n>', 'rows skipped first', (v) => Number.parseInt(v, 10))
    .option('--json', 'print the result as JSON')
    .action(async (id: string, sql: string, opts: { db: string; limit?: number; offset?: number; json?: boolean }, cmd: Command) => {
      const result = await track(snapshotQuery(loadConfig(rootOf(cmd)), { snapshotId: id, database: opts.db, sql, maxRows: opts.limit, offset: opts.offset, signal: shutdownSignal }));
      if (opts.json) return out(JSON.stringify(result, null, 2));
      const cell = (v: unknown) => (v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
      const lines = [result.columns.join('\t'), ...result.rows.map((r) => r.map(cell).join('\t'))];
      lines.push(`(${result.rows.length} row(s) from ${result.database} in ${result.snapshot_id}${result.more ? `; more: --offset ${result.next_offset}` : ''})`);
      out(lines.join('\n'));
    });
}
