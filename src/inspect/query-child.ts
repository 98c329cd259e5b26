// Runs one read-only query in a process of its own, so the parent can kill it at the time limit
// (better-sqlite3 has no interrupt): started by inspect/query.ts, one request over IPC, one answer.
import { checkAndRun, type QueryChildRequest } from './query-run.js';

process.once('message', (req: QueryChildRequest) => {
  const answer = checkAndRun(req, () => process.send?.({ type: 'started' }));
  process.send?.({ type: 'done', answer }, () => process.exit(0));
});
