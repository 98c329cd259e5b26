import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { WbError, describeError } from '../core/errors.js';
import { logger } from '../core/log.js';
import * as steps from './fs-steps.js';
import { disp, exists, type Ctx, type Files, type Journal, type SwapKind } from './journal.js';

/**
 * The pre_restore folders (<root>/db.pre_restore_<ts>/): the live files a swap set aside, and
 * pre-restore.json, the record written once the operation completed (its commit point). `restore
 * --undo` reads it; old folders are pruned only as a consented plan names them.
 */

/** pre-restore.json: written only once the operation completed; `restore --undo` reads it. */
export interface PreRestoreInfo {
  version?: 2;
  completed?: boolean;
  snapshot_id: string | null;
  kind: SwapKind;
  created_at: string;
  completed_at?: string;
  /** for an undo: the folder it put back */
  undoes?: string | null;
  databases: Array<{ name: string; target: string; file: string; existed: boolean; files?: Files }>;
}

export const RECORD_FILE = 'pre-restore.json';

/**
 * A target inside the data root is recorded relative to it, so that a root that was moved or
 * renamed since (or reached through another path) still puts its own databases back, never the
 * files at the old location. A target outside the root (configured there) stays absolute.
 */
function recordedTarget(root: string, target: string): string {
  const rel = path.relative(path.resolve(root), path.resolve(target));
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(target);
}

export function recordOf(root: string, journal: Journal): PreRestoreInfo {
  return {
    version: 2,
    completed: true,
    snapshot_id: journal.snapshot_id,
    kind: journal.kind,
    created_at: journal.started_at,
    completed_at: new Date().toISOString(),
    undoes: journal.undoes,
    databases: journal.items.map((i) => ({ name: i.name, target: recordedTarget(root, i.target), file: path.basename(i.kept), existed: Boolean(i.old['']), files: i.old })),
  };
}

export function writeRecord(ctx: Ctx, dir: string, info: PreRestoreInfo): void {
  ctx.step = `writing ${disp(ctx, path.join(dir, RECORD_FILE))}`;
  steps.mkdir(dir);
  steps.writeFileDurable(path.join(dir, RECORD_FILE), `${JSON.stringify(info, null, 2)}\n`);
}

export function readRecord(dir: string): PreRestoreInfo | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, RECORD_FILE), 'utf8')) as PreRestoreInfo;
  } catch {
    return null;
  }
}

/** Files (not folders) under `dir`, other than the record and its temporary. */
export function filesIn(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!(d === dir && (e.name === RECORD_FILE || e.name === `${RECORD_FILE}.tmp`))) found.push(p);
    }
  };
  walk(dir);
  return found;
}

/** Remove a pre_restore folder that holds no database file (never one that does). Returns false when it holds files. */
export function removeEmptyRecordDir(dir: string): boolean {
  if (!exists(dir)) return true;
  if (filesIn(dir).length) return false;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else steps.unlink(p); // only the record and its temporary (checked above)
    }
    steps.rmdir(d);
  };
  walk(dir);
  return true;
}

/**
 * After an undo, the folder it put back holds no database file any more: its record goes too, so
 * no later undo can pick it (a folder that still holds a file is never removed).
 */
export function removeSpentRecord(ctx: Ctx, undone: string | null, warnings: string[]): void {
  if (!undone) return;
  const dir = path.join(ctx.root, undone);
  try {
    if (!removeEmptyRecordDir(dir)) warnings.push(`${disp(ctx, dir)} still holds files after the undo; it is kept`);
  } catch (err) {
    warnings.push(`${disp(ctx, dir)} could not be removed after the undo (${describeError(err)}); the next wb-backup command removes it`);
  }
}

/** The names in the data root; none when it cannot be read (it does not exist yet). */
export function rootEntries(root: string): string[] {
  try {
    return fs.readdirSync(root);
  } catch {
    return [];
  }
}

/** db.pre_restore_<ts> folders with a completed record, newest first. */
export function listPreRestoreDirs(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith('db.pre_restore_') && readRecord(path.join(root, n))?.completed === true)
    .sort()
    .reverse()
    .map((n) => path.join(root, n));
}

/** The completed record of a pre_restore folder; throws WbError when it is missing or unreadable. */
export function readPreRestoreInfo(dir: string): PreRestoreInfo {
  const info = readRecord(dir);
  if (!info || info.completed !== true) throw new WbError('not_found', `${path.basename(dir)} has no record of a completed operation.`);
  return info;
}

/**
 * Remove safety copies beyond the newest `keep`, but only those in `named` (folder names): the ones
 * the consented plan said it would remove (planSafetyCopies). A copy that appeared since, or that the
 * plan did not list, is kept even when that leaves more than `keep`. Returns the removed folder names.
 */
export function prunePreRestoreDirs(root: string, keep: number, named: readonly string[]): string[] {
  const allowed = new Set(named);
  const old = listPreRestoreDirs(root)
    .slice(keep)
    .filter((d) => allowed.has(path.basename(d)));
  // Renamed out of sight at once (no longer a pre_restore folder --undo could pick), deleted in the
  // background: a restore should not wait while the disk frees hundreds of megabytes.
  for (const dir of old) fs.renameSync(dir, path.join(root, `${DISCARD_PREFIX}${path.basename(dir)}`));
  deleteInBackground(listDiscarded(root));
  return old.map((d) => path.basename(d));
}

const DISCARD_PREFIX = 'db.discard_';

/** Folders being deleted, including any an earlier background deletion did not finish. */
function listDiscarded(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith(DISCARD_PREFIX))
    .map((n) => path.join(root, n));
}

function deleteInBackground(dirs: string[]): void {
  if (!dirs.length) return;
  const inProcess = () => {
    for (const dir of dirs) void fs.promises.rm(dir, { recursive: true, force: true }).catch((err: unknown) => logger().warn({ dir, err }, 'could not delete an old pre_restore folder'));
  };
  if (process.platform === 'win32') return inProcess();
  // A detached rm outlives a CLI that exits right after the restore; never through a shell.
  const child = spawn('rm', ['-rf', '--', ...dirs], { detached: true, stdio: 'ignore' });
  child.on('error', inProcess);
  child.unref();
}
