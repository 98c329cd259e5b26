// Runs one read-only query in a process of its own, so the parent can kill it at the time limit
// (better-sqlite3 has no interrupt): started by inspect/query.ts, one request over IPC, one answer.
import { Worker } from 'node:worker_threads';
import { checkAndRun, type QueryChildRequest } from './query-run.js';

/**
 * A watchdog on a thread of its own (the main thread is blocked inside SQLite while a query runs):
 * the process kills itself when its parent is gone (a server killed with -9 leaves no runaway
 * query behind) or when `maxMs` have passed, a backstop behind the parent's own time limit.
 */
function watchdog(maxMs: number): void {
  const code = `const { workerData } = require('node:worker_threads');
const started = Date.now();
setInterval(() => { if (process.ppid !== workerData.ppid || Date.now() - started > workerData.maxMs) process.kill(process.pid, 'SIGKILL'); }, 250);`;
  new Worker(code, { eval: true, workerData: { ppid: process.ppid, maxMs } }).unref();
}

process.once('message', (req: QueryChildRequest & { backstopMs: number }) => {
  watchdog(req.backstopMs);
  const answer = checkAndRun(req, () => process.send?.({ type: 'started' }));
  process.send?.({ type: 'done', answer }, () => process.exit(0));
});
