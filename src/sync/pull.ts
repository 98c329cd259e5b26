import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config } from '../config.js';
import { WbError } from '../errors.js';
import { runGit } from '../git.js';
import { withRootLock } from '../lock.js';
import { quoteIdent } from '../sqlite-util.js';
import { planTableMerge } from './merge.js';
import { gitOptionsFor, readState, resolveBranchFor, syncConfig, syncDir, writeState, logOperation } from './push.js';
import { parseRows, rowLine, type SqlValue } from './rows.js';

export const SyncPullResultSchema = z.object({
  status: z.enum(['up_to_date', 'applied', 'conflicts', 'dry_run']),
  remote_commit: z.string().nullable(),
  applied: z.record(z.string(), z.object({ upserts: z.number(), deletes: z.number() })).describe('"db.table" -> rows applied from the remote'),
  conflicts: z.array(z.object({ table: z.string(), key: z.string(), base: z.string().nullable(), ours: z.string().nullable(), theirs: z.string().nullable() })),
  rejected: z.array(z.object({ path: z.string(), reason: z.string() })).describe('remote files that could not be used; nothing from those tables was applied'),
  message: z.string(),
});
export type SyncPullResult = z.infer<typeof SyncPullResultSchema>;

async function fileAt(repo: string, sha: string, file: string): Promise<string | null> {
  const r = await runGit(['show', `${sha}:${file}`], { cwd: repo });
  return r.ok ? r.stdout + (r.stdout ? '\n' : '') : null;
}

interface TableShape {
  columns: string[];
  pk: string[];
}

function keyOf(shape: TableShape, row: readonly SqlValue[]): string {
  return rowLine(shape.pk, shape.pk.map((c) => row[shape.columns.indexOf(c)] ?? null));
}

function toMap(shape: TableShape, rows: SqlValue[][]): Map<string, string> {
  return new Map(rows.map((r) => [keyOf(shape, r), rowLine(shape.columns, r)]));
}

/**
 * github_sync_pull: bring edits made on the remote into the databases. Per row, three-way against
 * the last synced commit: remote-only changes are applied (one transaction per database), rows
 * changed on both sides are reported as conflicts and left as they are on both sides. While
 * conflicts remain, the sync base does not move, so a push cannot overwrite the remote's versions.
 */
export async function syncPull(config: Config, opts: { dryRun?: boolean } = {}): Promise<SyncPullResult> {
  const sync = syncConfig(config);
  return withRootLock(config.root, 'github-sync pull', config.backup.lock_wait_ms, async () => {
    const repo = path.join(syncDir(config.root), 'repo');
    const state = readState(config.root);
    if (!state.last_synced_sha || !fs.existsSync(path.join(repo, '.git'))) {
      throw new WbError('invalid_input', 'There is no earlier sync to compare with.', 'Run github_sync_push first (or import a clone on a new machine).');
    }
    const { url, pre } = gitOptionsFor(sync);
    const branch = await resolveBranchFor(repo, pre, url, sync);
    const fetched = await runGit([...pre, 'fetch', '-q', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`], { cwd: repo });
    if (!fetched.ok) throw new WbError('snapshot_failed', `git fetch failed: ${fetched.stderr.split('\n')[0]}`, 'Check the sync remote and your credentials.');
    const head = (await runGit(['rev-parse', `refs/remotes/origin/${branch}`], { cwd: repo })).stdout.trim();
    const empty: SyncPullResult = { status: 'up_to_date', remote_commit: head, applied: {}, conflicts: [], rejected: [], message: 'The remote has no changes since the last sync.' };
    if (head === state.last_synced_sha) return empty;

    const changed = (await runGit(['diff', '--name-only', state.last_synced_sha, head], { cwd: repo })).stdout.split('\n').filter((p) => p.endsWith('.jsonl'));
    const result: SyncPullResult = { ...empty, status: 'applied', applied: {} };
    const byDb = new Map<string, string[]>();
    for (const file of changed) {
      const [db, base] = file.split('/');
      if (!db || !base) continue;
      byDb.set(db, [...(byDb.get(db) ?? []), base.replace(/\.jsonl$/, '')]);
    }
    for (const [dbName, tables] of byDb) {
      const vital = config.databases.find((d) => d.name === dbName);
      if (!vital || !fs.existsSync(vital.path)) {
        result.rejected.push({ path: dbName, reason: 'no such database on this machine' });
        continue;
      }
      const db = new Database(vital.path, { timeout: 5000 });
      db.defaultSafeIntegers(true);
      try {
        const work: Array<() => void> = [];
        for (const table of tables) {
          const file = `${dbName}/${table}.jsonl`;
          const info = db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Array<{ name: string; pk: number }>;
          if (!info.length) {
            result.rejected.push({ path: file, reason: 'the table does not exist in the database (schema changes are not pulled)' });
            continue;
          }
          const shape: TableShape = { columns: info.map((c) => c.name), pk: info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name) };
          if (!shape.pk.length) {
            result.rejected.push({ path: file, reason: 'the table has no primary key, so rows cannot be matched' });
            continue;
          }
          let base: Map<string, string>;
          let theirs: Map<string, string>;
          try {
            base = toMap(shape, parseRows((await fileAt(repo, state.last_synced_sha, file)) ?? '', file, shape.columns));
            theirs = toMap(shape, parseRows((await fileAt(repo, head, file)) ?? '', file, shape.columns));
          } catch (err) {
            result.rejected.push({ path: file, reason: (err as Error).message });
            continue;
          }
          const ours = toMap(shape, db.prepare(`SELECT ${shape.columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(table)}`).raw(true).all() as SqlValue[][]);
          const plan = planTableMerge(base, ours, theirs);
          for (const c of plan.conflicts) result.conflicts.push({ table: `${dbName}.${table}`, ...c });
          if (!plan.upserts.length && !plan.deletes.length) continue;
          result.applied[`${dbName}.${table}`] = { upserts: plan.upserts.length, deletes: plan.deletes.length };
          const upsert = db.prepare(`INSERT OR REPLACE INTO ${quoteIdent(table)} (${shape.columns.map(quoteIdent).join(', ')}) VALUES (${shape.columns.map(() => '?').join(', ')})`);
          const del = db.prepare(`DELETE FROM ${quoteIdent(table)} WHERE ${shape.pk.map((c) => `${quoteIdent(c)} IS ?`).join(' AND ')}`);
          work.push(() => {
            for (const line of plan.upserts) upsert.run(...parseRows(`${line}\n`, file, shape.columns)[0]!);
            for (const key of plan.deletes) del.run(...parseRows(`${key}\n`, file, shape.pk)[0]!);
          });
        }
        if (!opts.dryRun && work.length) db.transaction(() => work.forEach((w) => w()))();
      } finally {
        db.close();
      }
    }
    const applied = Object.values(result.applied).reduce((n, a) => n + a.upserts + a.deletes, 0);
    if (opts.dryRun) return { ...result, status: 'dry_run', message: `Would apply ${applied} row change(s); ${result.conflicts.length} conflict(s); nothing was changed.` };
    if (result.conflicts.length || result.rejected.length) {
      logOperation(config.root, { op: 'pull', status: 'conflicts', applied, conflicts: result.conflicts.length, rejected: result.rejected.length });
      return {
        ...result,
        status: 'conflicts',
        message: `Applied ${applied} row change(s); ${result.conflicts.length} row(s) changed on both sides and ${result.rejected.length} file(s) rejected were left untouched on both sides. Resolve them (make the row the same on both sides), then pull again.`,
      };
    }
    writeState(config.root, { ...state, last_synced_sha: head, last_remote_sha: head, last_sync_at: new Date().toISOString() });
    logOperation(config.root, { op: 'pull', status: 'applied', applied, remote: head });
    return { ...result, message: `Applied ${applied} row change(s) from the remote.` };
  });
}
