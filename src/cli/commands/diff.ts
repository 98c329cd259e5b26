import type { Command } from 'commander';
import { loadConfig } from '../../root/config.js';
import { shutdownSignal, track } from '../../core/shutdown.js';
import { snapshotDiff, type SnapshotDiff } from '../../inspect/diff.js';
import { rootOf } from '../root.js';
import { out } from '../output.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * `wb-backup diff <from> <to> [--db name] [--table t] [--limit N]`: what differs between two
 * snapshots (or "latest", or "live"): schema changes, rows added/deleted/changed per table and a
 * sample of them (src/inspect/diff.ts). Changes nothing.
 */
export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('compare two snapshots, or a snapshot and the live data ("live"): rows added, deleted and changed per table, and schema changes; changes nothing')
    .argument('<from>', 'the older side: a snapshot id, "latest" or "live"')
    .argument('<to>', 'the newer side: a snapshot id, "latest" or "live"')
    .option('--db <name>', 'only this database (repeatable)', collect)
    .option('--table <name>', 'only this table (repeatable)', collect)
    .option('--limit <n>', 'differing rows shown per table (default 20, at most 500)', (v) => Number.parseInt(v, 10))
    .option('--rows-cursor <cursor>', 'continue one table from the cursor printed after its rows')
    .option('--json', 'print the result as JSON')
    .action(async (from: string, to: string, opts: { db?: string[]; table?: string[]; limit?: number; rowsCursor?: string; json?: boolean }, cmd: Command) => {
      const result = await track(
        snapshotDiff(loadConfig(rootOf(cmd)), { from, to, databases: opts.db, tables: opts.table, sample: opts.limit, rowsCursor: opts.rowsCursor, signal: shutdownSignal }),
      );
      if (opts.json) return out(JSON.stringify(result, null, 2));
      out(describeDiff(result));
    });
}

/** The diff as lines a person reads: counts first, then each differing table and its sample. */
export function describeDiff(d: SnapshotDiff): string {
  const t = d.totals;
  const lines = [`${d.from} -> ${d.to}: ${t.rows_added} added, ${t.rows_deleted} deleted, ${t.rows_changed} changed row(s); ${t.schema_changes} schema change(s)`];
  for (const db of d.databases) {
    if (db.status !== 'compared') {
      lines.push(`${db.name}: ${db.status === 'only_in_from' ? `only in ${d.from}` : db.status === 'only_in_to' ? `only in ${d.to}` : `skipped (${db.reason ?? 'unreadable'})`}`);
      continue;
    }
    lines.push(`${db.name}: ${db.counts.tables_differing} table(s) differ, ${db.counts.tables_same} the same`);
    const s = db.schema;
    if (s) {
      const parts: string[] = [];
      if (s.tables_added.length) parts.push(`tables added: ${s.tables_added.join(', ')}`);
      if (s.tables_removed.length) parts.push(`tables removed: ${s.tables_removed.join(', ')}`);
      for (const c of s.tables_changed) parts.push(`table ${c.table} changed${c.columns_added.length ? `, columns added: ${c.columns_added.join(', ')}` : ''}${c.columns_removed.length ? `, columns removed: ${c.columns_removed.join(', ')}` : ''}${c.columns_changed.length ? `, columns changed: ${c.columns_changed.map((x) => x.column).join(', ')}` : ''}`);
      if (s.indexes_added.length) parts.push(`indexes added: ${s.indexes_added.join(', ')}`);
      if (s.indexes_removed.length) parts.push(`indexes removed: ${s.indexes_removed.join(', ')}`);
      if (s.indexes_changed.length) parts.push(`indexes changed: ${s.indexes_changed.join(', ')}`);
      for (const [what, list] of [['added', s.others_added], ['removed', s.others_removed], ['changed', s.others_changed]] as const) if (list.length) parts.push(`${what}: ${list.join(', ')}`);
      for (const p of parts) lines.push(`  schema: ${p}`);
    }
    for (const tb of db.tables) {
      if (!tb.compared) {
        lines.push(`  ${tb.table}: not compared (${tb.not_compared_because ?? ''}); ${tb.rows_from} -> ${tb.rows_to} rows`);
        continue;
      }
      lines.push(tb.added === null ? `  ${tb.table} (by ${tb.key.join(', ')}), next rows:` : `  ${tb.table} (by ${tb.key.join(', ')}): +${tb.added} -${tb.deleted} ~${tb.changed} (${tb.rows_from} -> ${tb.rows_to} rows)`);
      for (const r of tb.sample) {
        const key = JSON.stringify(r.key);
        if (r.change === 'added') lines.push(`    + ${key} ${JSON.stringify(r.after)}`);
        else if (r.change === 'deleted') lines.push(`    - ${key} ${JSON.stringify(r.before)}`);
        else lines.push(`    ~ ${key} ${(r.columns_changed ?? []).map((c) => `${c}: ${JSON.stringify(r.before?.[c])} -> ${JSON.stringify(r.after?.[c])}`).join(', ')}`);
      }
      if (tb.next_rows_cursor) lines.push(`    … more: --rows-cursor ${tb.next_rows_cursor}`);
    }
  }
  return lines.join('\n');
}
