import fs from 'node:fs';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { cachedSnapshotDatabase } from './cache.js';
import type { QueryAnswer, QueryChildRequest } from './query-run.js';

export const QUERY_ROWS_DEFAULT = 100;
export const QUERY_ROWS_MAX = 1000;
/** Characters of a text value shown in a query result before it is cut (its length is said). */
export const QUERY_TEXT_SHOWN = 500;

export interface QueryRequest {
  /** a snapshot id or "latest" */
  snapshotId: string;
  database: string;
  sql: string;
  /** rows returned (default 100, at most 1000) */
  maxRows?: number | undefined;
  /** rows of the result skipped first (the next_offset of an earlier call) */
  offset?: number | undefined;
  /** default: config inspect.query_timeout_ms */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** called with the query process's pid once it runs (tests look at what it has open) */
  onProcess?: ((pid: number) => void) | undefined;
}

export const QueryResultSchema = z.object({
  snapshot_id: z.string().describe('the snapshot read ("latest" resolved)'),
  database: z.string(),
  columns: z.array(z.string()),
  rows: z.array(z.array(z.unknown())).describe('values in column order: null, a number, text, {integer: "digits"} beyond 2^53, {text_prefix, length} for long text, {blob_hex, bytes, cut} for a blob'),
  offset: z.number().describe('rows of the result skipped before the first one here'),
  more: z.boolean().describe('the result has more rows after these'),
  next_offset: z.number().nullable().describe('pass as offset (with the same sql) for the next rows; null when there are none'),
});
export type QueryResult = z.infer<typeof QueryResultSchema>;

function childUrl(): { module: string; execArgv: string[] } {
  const js = new URL('./query-child.js', import.meta.url);
  if (fs.existsSync(js)) return { module: fileURLToPath(js), execArgv: ['--max-old-space-size=256'] };
  // Under vitest only the .ts source exists: the child loads it through tsx (a dev dependency).
  return { module: fileURLToPath(new URL('./query-child.ts', import.meta.url)), execArgv: ['--import', 'tsx', '--max-old-space-size=256'] };
}

/**
 * data_snapshot_query: one read-only SQL statement against a database of a snapshot, rebuilt and
 * verified into the cache (inspect/cache); the live files are never opened. The statement runs in
 * a child process that opens the copy read-only and refuses anything but a read-only statement
 * returning rows (ATTACH, DETACH, VACUUM and PRAGMAs that set a value are refused by name;
 * load_extension stays disabled); the process is killed when the query runs longer than the time
 * limit. At most maxRows rows come back, each value bounded; `next_offset` pages.
 * @throws WbError `invalid_input` (a refused statement, a query error, the time limit), `not_found`, and the cache's errors
 */
export async function snapshotQuery(config: Config, req: QueryRequest): Promise<QueryResult> {
  const maxRows = Math.min(Math.max(1, req.maxRows ?? QUERY_ROWS_DEFAULT), QUERY_ROWS_MAX);
  const offset = Math.max(0, req.offset ?? 0);
  const timeoutMs = req.timeoutMs ?? config.inspect.query_timeout_ms;
  const cached = await cachedSnapshotDatabase(config, req.snapshotId, req.database, req.signal ? { signal: req.signal } : {});
  const answer = await runInChild({ file: cached.file, sql: req.sql, maxRows, offset, textShown: QUERY_TEXT_SHOWN }, timeoutMs, req.signal, req.onProcess);
  if (!answer.ok) {
    throw new WbError('invalid_input', answer.refused ? `The query was refused: ${answer.message}. Nothing was run.` : `${answer.message[0]!.toUpperCase()}${answer.message.slice(1)}.`, answer.refused ? 'Send one SELECT (or WITH … SELECT) statement: a snapshot is only read.' : 'Correct the SQL (data_snapshot_diff shows the tables and columns that changed).');
  }
  return {
    snapshot_id: cached.snapshot_id,
    database: req.database,
    columns: answer.columns,
    rows: answer.rows,
    offset,
    more: answer.more,
    next_offset: answer.more ? offset + answer.rows.length : null,
  };
}

function runInChild(req: QueryChildRequest, timeoutMs: number, signal: AbortSignal | undefined, onProcess: ((pid: number) => void) | undefined): Promise<QueryAnswer> {
  const { module, execArgv } = childUrl();
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = fork(module, [], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });
    } catch (err) {
      reject(err as Error);
      return;
    }
    let timer: NodeJS.Timeout | null = null;
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      fn();
    };
    const onAbort = () => finish(() => reject(new WbError('interrupted', 'The query was stopped before it finished.')));
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: { type: 'started' } | { type: 'done'; answer: QueryAnswer }) => {
      if (m.type === 'started') {
        if (child.pid !== undefined) onProcess?.(child.pid);
        // The limit counts the query's own time, not the process's start.
        timer = setTimeout(
          () =>
            finish(() =>
              reject(
                new WbError(
                  'invalid_input',
                  `The query was stopped after ${timeoutMs / 1000} s (the time limit): it read too much or never ends (a recursive CTE without a bound?).`,
                  'Narrow it with WHERE or LIMIT, or raise inspect.query_timeout_ms in wb-backup.yaml.',
                ),
              ),
            ),
          timeoutMs,
        );
      } else finish(() => resolve(m.answer));
    });
    child.on('error', (err) => finish(() => reject(err)));
    child.on('exit', (code, sig) => finish(() => reject(new Error(`the query process stopped before answering (${sig ?? `exit code ${code}`})`))));
    // The child's own backstop (its watchdog) in case this process dies or its timer never fires.
    child.send({ ...req, backstopMs: timeoutMs + 30_000 });
  });
}
