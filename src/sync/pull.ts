/**
 * github_sync_pull, the orchestration: the sync base, the remote head, one database at a time
 * (pull-merge.ts merges a table, pull-apply.ts writes a database's changes in one transaction),
 * then the sync state. Reading the remote tree is pull-remote.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config, VitalDatabase } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { runGit } from '../core/git.js';
import { withRootLock } from '../root/lock.js';
import { mirrorDbDir } from '../root/names.js';
import { syncConfig } from './config.js';
import { fetchBranch, gitOptionsFor, resolveBranchFor } from './git-remote.js';
import { nameOfSegment } from './mirror-paths.js';
import { applyExactly } from './pull-apply.js';
import { mergeTable } from './pull-merge.js';
import { changedPaths, changedTables, gitRows, readSides, type RemoteSides } from './pull-remote.js';
import { SyncProgress } from './sync-progress.js';
import type { ProgressSink } from '../core/progress.js';
import { heldResolution, recordConflicts, type FoundConflict } from './conflicts.js';
import { logOperation, readState, syncDir, writeState, type SyncState } from './state.js';

export const SyncPullResultSchema = z.object({
  status: z.enum(['up_to_date', 'applied', 'conflicts', 'dry_run']),
  remote_commit: z.string().nullable(),
  applied: z.record(z.string(), z.object({ upserts: z.number(), deletes: z.number() })).describe('"db.table" -> rows applied from the remote'),
  conflicts: z.array(
    z.object({
      table: z.string(),
      key: z.string(),
      base: z.string().nullable(),
      ours: z.string().nullable(),
      theirs: z.string().nullable(),
      path: z.string().optional().describe('the document file, for tables mirrored as documents'),
    }),
  ),
  rejected: z.array(z.object({ path: z.string(), reason: z.string() })).describe('remote files that could not be used; nothing from those tables was applied'),
  message: z.string(),
});
export type SyncPullResult = z.infer<typeof SyncPullResultSchema>;

/** Whether the last commit wb-backup pushed to its pull request's branch is now part of `head`. */
async function pullRequestMergedInto(repo: string, prBranch: string, head: string): Promise<boolean> {
  const tip = await runGit(['rev-parse', '-q', '--verify', `refs/remotes/origin/${prBranch}`], { cwd: repo });
  if (!tip.ok) return false;
  return (await runGit(['merge-base', '--is-ancestor', tip.stdout.trim(), head], { cwd: repo })).ok;
}

/**
 * github_sync_pull: bring edits made on the remote into the databases. Per row, three-way against
 * the last synced commit: remote-only changes are applied (one transaction per database), rows
 * changed on both sides are reported as conflicts and left as they are on both sides. While
 * conflicts remain, the sync base does not move, so a push cannot overwrite the remote's versions.
 * A manifest.json on either side that cannot be trusted throws WbError manifest_invalid, before
 * anything is applied.
 */
export async function syncPull(config: Config, opts: { dryRun?: boolean; env?: Record<string, string>; onProgress?: ProgressSink } = {}): Promise<SyncPullResult> {
  const sync = syncConfig(config);
  // Progress in bytes: what the fetch adds to the clone's .git folder (src/sync/sync-progress.ts).
  const progress = new SyncProgress(opts.onProgress);
  return withRootLock(config.root, 'github-sync pull', config.backup.lock_wait_ms, async () => {
    const repo = path.join(syncDir(config.root), 'repo');
    const state = readState(config.root);
    const base = requireSyncBase(state, repo);
    const remote = gitOptionsFor(sync, opts.env);
    progress.watchGit(repo);
    progress.step('fetching the sync branch');
    const branch = await resolveBranchFor(repo, remote, sync);
    const head = await fetchBranch(repo, remote, branch);
    if (!head) throw new WbError('sync_failed', `The branch ${branch} no longer exists on the sync remote.`, 'Push again (github_sync_push) to recreate it, or set sync.github.branch.');
    const empty: SyncPullResult = { status: 'up_to_date', remote_commit: head, applied: {}, conflicts: [], rejected: [], message: 'The remote has no changes since the last sync.' };
    if (head === base) return empty;

    const changed = await changedPaths(repo, base, head);
    const result: SyncPullResult = { ...empty, status: 'applied', applied: {} };
    const sides = await readSides(repo, base, head, branch);
    // Which database and table each reported conflict belongs to (a name may hold dots, so "db.table" cannot be split).
    const origins: Array<{ database: string; table: string }> = [];
    for (const [dbSegment, tableSegments] of changedTables(changed)) {
      const vital = config.databases.find((d) => mirrorDbDir(d.name) === dbSegment);
      if (!vital || !fs.existsSync(vital.path)) {
        result.rejected.push({ path: dbSegment, reason: 'no such database on this machine' });
        continue;
      }
      progress.step(`merging ${dbSegment}`);
      await pullDatabase(sides, result, vital, dbSegment, tableSegments, Boolean(opts.dryRun), origins);
    }
    const found = settleHeldResolutions(state, result, origins);
    return finishPull(config, state, result, { base, head, branch, found }, Boolean(opts.dryRun));
  }).finally(() => progress.stop());
}

/** The last synced commit; throws (with what to do) when there is none yet. */
function requireSyncBase(state: SyncState, repo: string): string {
  if (state.last_synced_sha && fs.existsSync(path.join(repo, '.git'))) return state.last_synced_sha;
  if (state.open_pull_request) {
    throw new WbError(
      'invalid_input',
      `There is no sync base yet: the first sync is pull request #${state.open_pull_request.number} (${state.open_pull_request.url}).`,
      'Once it is merged, run github_sync_push: it finds the branch equal to the databases and makes it the base for later pulls.',
    );
  }
  throw new WbError('invalid_input', 'There is no earlier sync to compare with.', 'Run github_sync_push first (or import a clone on a new machine).');
}

/**
 * Merge the changed tables of one database and (unless a dry run) apply their changes in one
 * transaction; a constraint the remote rows break rolls it all back and rejects the database.
 */
async function pullDatabase(
  sides: RemoteSides,
  result: SyncPullResult,
  vital: VitalDatabase,
  dbSegment: string,
  tableSegments: ReadonlySet<string>,
  dryRun: boolean,
  origins: Array<{ database: string; table: string }>,
): Promise<void> {
  const dbName = vital.name;
  const db = new Database(vital.path, { timeout: 5000 });
  db.defaultSafeIntegers(true);
  try {
    const work: Array<{ table: string; apply: () => void }> = [];
    // Table segments back to names through the database's own tables.
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[];
    for (const segment of tableSegments) {
      const table = nameOfSegment(segment, tables);
      if (table === undefined) {
        result.rejected.push({ path: `${dbSegment}/${segment}`, reason: 'the table does not exist in the database (schema changes are not pulled)' });
        continue;
      }
      const apply = await mergeTable(gitRows(sides), result, db, dbName, table);
      while (origins.length < result.conflicts.length) origins.push({ database: dbName, table });
      if (apply) work.push({ table, apply });
    }
    if (dryRun || !work.length) return;
    try {
      applyExactly(db, work.map((w) => w.table), () => work.forEach((w) => w.apply()));
    } catch (err) {
      // The transaction rolled back: nothing from this database was applied.
      for (const key of Object.keys(result.applied)) if (key.startsWith(`${dbName}.`)) delete result.applied[key];
      result.rejected.push({
        path: dbName,
        reason: `the remote rows break a constraint of the database (${(err as Error).message}); nothing from ${dbName} was applied. Fix those rows on the remote (a foreign key or a unique column), then pull again`,
      });
    }
  } finally {
    db.close();
  }
}

/**
 * The conflicts found, each with its database and table; those resolved 'ours' earlier (github_sync_resolve)
 * on exactly these two lines are settled and taken out of `result.conflicts`: the next push sends ours.
 */
function settleHeldResolutions(state: SyncState, result: SyncPullResult, origins: ReadonlyArray<{ database: string; table: string }>): FoundConflict[] {
  const found: FoundConflict[] = result.conflicts.map((c, i) => ({ ...origins[i]!, key: c.key, base: c.base, ours: c.ours, theirs: c.theirs, ...(c.path !== undefined ? { path: c.path } : {}) }));
  const open = found.map((f) => heldResolution(state.conflicts, f) === undefined);
  result.conflicts = result.conflicts.filter((_, i) => open[i]);
  return found;
}

/**
 * The outcome in words, and the sync state: only a pull that left no conflict and no rejected file
 * moves the sync base to `head` (and closes the pull request it contains); otherwise the conflicts
 * are recorded in the state for github_sync_resolve. Every run is logged.
 */
async function finishPull(
  config: Config,
  state: SyncState,
  result: SyncPullResult,
  at: { base: string; head: string; branch: string; found: FoundConflict[] },
  dryRun: boolean,
): Promise<SyncPullResult> {
  const head = at.head;
  const applied = Object.values(result.applied).reduce((n, a) => n + a.upserts + a.deletes, 0);
  if (dryRun) return { ...result, status: 'dry_run', message: `Would apply ${applied} row change(s); ${result.conflicts.length} conflict(s); nothing was changed.` };
  if (result.conflicts.length || result.rejected.length) {
    const conflicts = recordConflicts(state.conflicts, at.found, { base: at.base, remote: head, branch: at.branch, rejected: result.rejected.length, now: new Date().toISOString() });
    writeState(config.root, { ...state, last_pulled_sha: head, conflicts: conflicts.items.length ? conflicts : null });
    logOperation(config.root, { op: 'pull', status: 'conflicts', applied, conflicts: result.conflicts.length, rejected: result.rejected.length });
    return {
      ...result,
      status: 'conflicts',
      message: `Applied ${applied} row change(s); ${result.conflicts.length} row(s) changed on both sides and ${result.rejected.length} file(s) rejected were left untouched on both sides. ${result.conflicts.length ? 'Resolve each conflict row by row with github_sync_resolve (keep ours or take theirs; call it without resolutions to list them)' : 'Fix the rejected files on the remote'}, then pull again.`,
    };
  }
  const repo = path.join(syncDir(config.root), 'repo');
  const merged = state.open_pull_request ? await pullRequestMergedInto(repo, state.open_pull_request.branch, head) : false;
  writeState(config.root, { ...state, last_synced_sha: head, last_remote_sha: head, last_pulled_sha: head, last_sync_at: new Date().toISOString(), conflicts: null, ...(merged ? { open_pull_request: null } : {}) });
  logOperation(config.root, { op: 'pull', status: 'applied', applied, remote: head });
  return { ...result, message: `Applied ${applied} row change(s) from the remote.` };
}
