import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { logger } from '../log.js';
import { syncDirectory, syncFileData, writeFileAtomic } from '../durable-file.js';

/**
 * The swap puts new database files in place of live ones, journaled so that a crash at any instant
 * is completed or rolled back by the next wb-backup command: the live set is never half old, half new.
 *
 * Journal: <root>/restore-journal.json, written (fsynced) before the first move and after each
 * database's move. Recovery rolls forward when every database was moved, and back otherwise.
 */
const COMPANIONS = ['-wal', '-shm', '-journal'];

export const SwapItemSchema = z.object({
  name: z.string(),
  /** live file to replace */
  target: z.string(),
  /** new file to put there (its -wal/-shm travel with it); null: only move the live file aside */
  incoming: z.string().nullable(),
});
export type SwapItem = z.infer<typeof SwapItemSchema>;

const JournalSchema = z.object({
  version: z.literal(1),
  kind: z.enum(['restore', 'undo']),
  snapshot_id: z.string().nullable(),
  started_at: z.string(),
  /** where the live files go: <root>/db.pre_restore_<ts> */
  pre_restore_dir: z.string(),
  /** folder the incoming files live in, removed once the swap is done or undone */
  incoming_dir: z.string().nullable(),
  items: z.array(SwapItemSchema),
  moved: z.array(z.string()),
});
type Journal = z.infer<typeof JournalSchema>;

export interface PreRestoreInfo {
  snapshot_id: string | null;
  kind: 'restore' | 'undo';
  created_at: string;
  databases: Array<{ name: string; target: string; file: string; existed: boolean }>;
}

export function journalPath(root: string): string {
  return path.join(root, 'restore-journal.json');
}

/** `${file}.tmp` (not per process): recovery removes a journal left half-written under that name. */
function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, `${file}.tmp`);
}

/** rename, or copy+fsync+rename across filesystems (a database configured on another disk). */
function moveFile(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = `${to}.wb-move-tmp`;
    fs.copyFileSync(from, tmp);
    syncFileData(tmp);
    fs.renameSync(tmp, to);
    syncDirectory(path.dirname(to));
    fs.rmSync(from, { force: true });
  }
}

function keptDir(preRestoreDir: string, item: SwapItem): string {
  return path.join(preRestoreDir, item.name);
}

/** Test seam for crash-safety tests: the real process kills itself with SIGKILL at a named point. */
export function crashPoint(name: string): void {
  if (process.env.WB_BACKUP_CRASH_POINT === name) process.kill(process.pid, 'SIGKILL');
}

export interface SwapRequest {
  root: string;
  kind: 'restore' | 'undo';
  snapshotId: string | null;
  preRestoreDir: string;
  incomingDir: string | null;
  items: SwapItem[];
}

/** Move every live file aside and every incoming file into place. */
export function performSwap(req: SwapRequest): void {
  const journal: Journal = {
    version: 1,
    kind: req.kind,
    snapshot_id: req.snapshotId,
    started_at: new Date().toISOString(),
    pre_restore_dir: req.preRestoreDir,
    incoming_dir: req.incomingDir,
    items: req.items,
    moved: [],
  };
  fs.mkdirSync(req.preRestoreDir, { recursive: true });
  const info: PreRestoreInfo = {
    snapshot_id: req.snapshotId,
    kind: req.kind,
    created_at: journal.started_at,
    databases: req.items.map((i) => ({ name: i.name, target: i.target, file: path.basename(i.target), existed: fs.existsSync(i.target) })),
  };
  writeJson(path.join(req.preRestoreDir, 'pre-restore.json'), info);
  writeJson(journalPath(req.root), journal);
  for (const [index, item] of req.items.entries()) {
    if (index > 0) crashPoint('between-moves');
    moveItem(item, req.preRestoreDir);
    journal.moved.push(item.name);
    writeJson(journalPath(req.root), journal);
  }
  crashPoint('after-last-move');
  finish(req.root, journal);
}

function moveItem(item: SwapItem, preRestoreDir: string): void {
  const kept = keptDir(preRestoreDir, item);
  fs.mkdirSync(kept, { recursive: true });
  const base = path.basename(item.target);
  // Main file first, then its companions: the WAL always travels with the file it belongs to.
  if (fs.existsSync(item.target)) moveFile(item.target, path.join(kept, base));
  for (const suffix of COMPANIONS) {
    if (fs.existsSync(item.target + suffix)) moveFile(item.target + suffix, path.join(kept, base + suffix));
  }
  if (item.incoming !== null) {
    moveFile(item.incoming, item.target);
    for (const suffix of COMPANIONS) {
      if (fs.existsSync(item.incoming + suffix)) moveFile(item.incoming + suffix, item.target + suffix);
    }
  }
  syncDirectory(path.dirname(item.target));
}

function finish(root: string, journal: Journal): void {
  if (journal.incoming_dir) fs.rmSync(journal.incoming_dir, { recursive: true, force: true });
  fs.rmSync(journalPath(root), { force: true });
  syncDirectory(root);
}

/** Put one item back as it was before the swap (the incoming file returns to where it came from). */
function rollBackItem(item: SwapItem, preRestoreDir: string): void {
  const kept = keptDir(preRestoreDir, item);
  const base = path.basename(item.target);
  const keptMain = path.join(kept, base);
  const liveMoved = fs.existsSync(keptMain) || COMPANIONS.some((s) => fs.existsSync(path.join(kept, base + s)));
  if (item.incoming !== null && fs.existsSync(item.target) && (liveMoved || !fs.existsSync(item.incoming))) {
    // What sits at the target is the incoming file (the live one was moved aside, or never existed).
    if (!fs.existsSync(item.incoming)) {
      moveFile(item.target, item.incoming);
      for (const suffix of COMPANIONS) {
        if (fs.existsSync(item.target + suffix)) moveFile(item.target + suffix, item.incoming + suffix);
      }
    } else fs.rmSync(item.target, { force: true });
  }
  if (fs.existsSync(keptMain)) moveFile(keptMain, item.target);
  for (const suffix of COMPANIONS) {
    const k = path.join(kept, base + suffix);
    if (fs.existsSync(k)) moveFile(k, item.target + suffix);
  }
  fs.rmSync(kept, { recursive: true, force: true });
}

export type RecoveryOutcome = { action: 'none' } | { action: 'rolled_forward' | 'rolled_back'; snapshot_id: string | null; databases: string[] };

/**
 * Finish or undo a swap that a crash interrupted. Call holding the root lock, before anything else
 * touches the databases.
 */
export function recoverInterruptedSwap(root: string): RecoveryOutcome {
  const outcome = recoverJournal(root);
  // Staging folders only exist while a restore holds the lock: any seen now belong to a dead one.
  for (const dir of leftoverStagingDirs(root)) fs.rmSync(dir, { recursive: true, force: true });
  return outcome;
}

export function leftoverStagingDirs(root: string): string[] {
  try {
    return fs
      .readdirSync(root)
      .filter((n) => n.startsWith('db.staging_'))
      .map((n) => path.join(root, n));
  } catch {
    return [];
  }
}

function recoverJournal(root: string): RecoveryOutcome {
  const file = journalPath(root);
  if (!fs.existsSync(file)) {
    fs.rmSync(`${file}.tmp`, { force: true });
    return { action: 'none' };
  }
  const parsed = JournalSchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`restore-journal.json is unreadable (${parsed.error.message}); inspect it and the db.pre_restore_* folders by hand`);
  const journal = parsed.data;
  const names = journal.items.map((i) => i.name);
  if (journal.moved.length === journal.items.length) {
    finish(root, journal);
    logger().warn({ snapshot: journal.snapshot_id, databases: names }, 'completed a restore swap that was interrupted after its last move');
    return { action: 'rolled_forward', snapshot_id: journal.snapshot_id, databases: names };
  }
  for (const item of [...journal.items].reverse()) rollBackItem(item, journal.pre_restore_dir);
  fs.rmSync(journal.pre_restore_dir, { recursive: true, force: true });
  finish(root, journal);
  logger().warn({ snapshot: journal.snapshot_id, databases: names }, 'rolled back a restore swap that was interrupted; the live databases are as before');
  return { action: 'rolled_back', snapshot_id: journal.snapshot_id, databases: names };
}

/** db.pre_restore_<ts> folders, newest first. */
export function listPreRestoreDirs(root: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith('db.pre_restore_') && fs.existsSync(path.join(root, n, 'pre-restore.json')))
    .sort()
    .reverse()
    .map((n) => path.join(root, n));
}

export function readPreRestoreInfo(dir: string): PreRestoreInfo {
  return JSON.parse(fs.readFileSync(path.join(dir, 'pre-restore.json'), 'utf8')) as PreRestoreInfo;
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
  try {
    return fs
      .readdirSync(root)
      .filter((n) => n.startsWith(DISCARD_PREFIX))
      .map((n) => path.join(root, n));
  } catch {
    return [];
  }
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
