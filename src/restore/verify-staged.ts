import { countRows } from '../core/sqlite-util.js';
import { applyMigrations, type Migration } from './migrations.js';
import { migrationLossProblems, rowCountProblems } from './row-counts.js';
import { healthProblems, openStaged } from './verify-db.js';
import { syncFileData } from '../core/durable-file.js';
import { WbError } from '../core/errors.js';

export interface VerifyRequest {
  staged: string;
  expectedRows: Record<string, number>;
  pending: Migration[];
  /** fdatasync the file after migrations changed it (a real restore; the unpacked bytes are synced by the caller) */
  durable?: boolean;
}

export type VerifyResponse =
  | { ok: true; applied: string[]; rows: Record<string, number>; toVersion: number }
  /** `hint`: what to do when it is not "use another snapshot" (a failed migration: fix it) */
  | { ok: false; problem: string; hint?: string };

/**
 * Everything a staged database must pass before it may replace a live one: row counts equal to the
 * manifest's, the migrations ladder, integrity_check, foreign_key_check, and no rows lost to a
 * migration. Runs in a worker thread, one database per call, so checks overlap the unpacking.
 */
export function verifyStaged(req: VerifyRequest): VerifyResponse {
  let db;
  try {
    db = openStaged(req.staged);
  } catch (err) {
    return { ok: false, problem: `it cannot be opened (${(err as Error).message})` };
  }
  try {
    let before: Record<string, number>;
    try {
      before = countRows(db);
    } catch (err) {
      return { ok: false, problem: `it cannot be read (${(err as Error).message}); integrity_check would fail` };
    }
    const countIssues = rowCountProblems(req.expectedRows, before);
    if (countIssues.length) return { ok: false, problem: `row counts differ from the manifest: ${countIssues.join('; ')}` };
    let applied: string[];
    try {
      applied = applyMigrations(db, req.pending);
    } catch (err) {
      return { ok: false, problem: err instanceof Error ? err.message : String(err), ...(err instanceof WbError && err.hint ? { hint: err.hint } : {}) };
    }
    const health = healthProblems(db);
    if (health.length) return { ok: false, problem: health.join(' | ') };
    const after = applied.length ? countRows(db) : before;
    const loss = migrationLossProblems(before, after);
    if (loss.length) return { ok: false, problem: loss.join('; ') };
    const toVersion = Number(db.pragma('user_version', { simple: true }));
    db.close();
    if (req.durable && applied.length) syncFileData(req.staged);
    return { ok: true, applied, rows: after, toVersion };
  } finally {
    if (db.open) db.close();
  }
}
