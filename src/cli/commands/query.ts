import type { Command } from 'commander';
import { loadConfig } from '../../root/config.js';
import { shutdownSignal, track } from '../../core/shutdown.js';
import { snapshotQuery, type QueryResult } from '../../inspect/query.js';
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
      const cell = (v: unknown) => (v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
      const bounded = boundPrinted(result, opts.json ? (r) => JSON.stringify(r) : (r) => r.map(cell).join('\t'));
      if (opts.json) return out(JSON.stringify(bounded.result, null, 2));
      const lines = [cutLine(result.columns.join('\t')), ...bounded.lines];
      const page = bounded.left ? `; ${bounded.left} more row(s) of this page not printed: the output is capped at ${PRINTED_CHARS_MAX} characters` : '';
      const more = bounded.result.more ? `; more: --offset ${bounded.result.next_offset}${bounded.left ? ' (with a smaller --limit, or fewer columns)' : ''}` : '';
      lines.push(`(${bounded.result.rows.length} row(s) from ${result.database} in ${result.snapshot_id}${page}${more})`);
      out(lines.join('\n'));
    });
}

/**
 * The most a query prints (characters of row text, text or --json): a result with many wide columns
 * would otherwise flood the terminal however few rows it has. The MCP result is bounded likewise
 * (src/mcp/bounded.ts).
 */
export const PRINTED_CHARS_MAX = 64_000;
/** One line wider than the whole cap (the header, or a single row) is cut to it. */
function cutLine(line: string): string {
  return line.length > PRINTED_CHARS_MAX ? `${line.slice(0, PRINTED_CHARS_MAX)}… (line cut: ${line.length} characters)` : line;
}

/**
 * Keeps the rows whose printed text fits PRINTED_CHARS_MAX (always the first, its line cut to the
 * cap), and makes the result page on from the first row left out: `more` and `next_offset`
 * then name it, so --offset continues exactly there.
 * @returns the result as printed, its rows' lines, and how many rows of the page were left out
 */
function boundPrinted(result: QueryResult, line: (row: unknown[]) => string): { result: QueryResult; lines: string[]; left: number } {
  const lines: string[] = [];
  let bytes = 0;
  for (const row of result.rows) {
    const text = line(row);
    if (lines.length > 0 && bytes + text.length + 1 > PRINTED_CHARS_MAX) break;
    bytes += text.length + 1;
    lines.push(cutLine(text));
  }
  const left = result.rows.length - lines.length;
  if (!left) return { result, lines, left };
  return { result: { ...result, rows: result.rows.slice(0, lines.length), more: true, next_offset: result.offset + lines.length }, lines, left };
}
