import fs from 'node:fs';
import path from 'node:path';
import { WbError, describeError } from '../core/errors.js';
import { logger } from '../core/log.js';
import * as steps from './fs-steps.js';
import { JournalSchema, Stuck, clearHashCache, disp, exists, journalPath, realTarget, recordFiles, type Ctx, type Journal, type SwapKind } from './journal.js';
import { checkReachable, describeFiles, hintFor, putBack, removeStaging, retire, rollForwardItem, syncFolders } from './moves.js';
import { filesIn, listPreRestoreDirs, readRecord, removeEmptyRecordDir, removeSpentRecord, rootEntries, writeRecord, type PreRestoreInfo } from './pre-restore.js';

/**
 * Recovery: the first thing a command that changes data does (holding the root lock). It finishes
 * or rolls back a swap a crash interrupted (by its journal and pre-restore.json, the commit point),
 * removes staging folders of dead restores, and settles pre_restore folders without a completed record.
 */

export type RecoveryOutcome =
  | { action: 'none'; notes: string[] }
  | { action: 'rolled_forward' | 'rolled_back'; kind: SwapKind; snapshot_id: string | null; databases: string[]; notes: string[] };

/** True when something is left for recovery: a journal, a staging folder, or a record that is not marked completed. */
export function needsRecovery(root: string): boolean {
  return exists(journalPath(root)) || exists(`${journalPath(root)}.tmp`) || leftoverStagingDirs(root).length > 0 || incompleteRecordDirs(root).length > 0 || spentRecordDirs(root).length > 0;
}

/**
 * Finish or undo a swap that a crash (or an earlier failure) interrupted, remove staging folders of
 * dead restores, and clean up or adopt pre_restore folders without a completed record. Call holding
 * the root lock, before anything else touches the databases. Throws WbError 'recovery_needed',
 * saying what is where, when the files do not match the journal (then nothing is moved).
 */
export function recoverInterruptedSwap(root: string): RecoveryOutcome {
  clearHashCache();
  const outcome = recoverJournal(root);
  const ctx: Ctx = { root, step: '' };
  // Staging folders only exist while a restore holds the lock: any seen now belong to a dead one.
  for (const dir of leftoverStagingDirs(root)) removeStaging(ctx, dir);
  outcome.notes.push(...settleRecords(root));
  return outcome;
}

export function leftoverStagingDirs(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith('db.staging_'))
    .map((n) => path.join(root, n));
}

/**
 * A journal names absolute paths, but belongs to the root it lies in: the root it was written in is
 * the folder of its pre_restore folder. When the root has been moved or copied since (the command
 * now runs on another path), every path that was inside the old root is taken inside this one, so
 * recovery never moves files of another root (a copy, or the original of this copy), nor reports
 * this root's databases as put back when it acted elsewhere. Paths outside the root stay.
 */
function rebaseJournal(journal: Journal, root: string): Journal {
  const oldRoot = path.dirname(path.resolve(journal.pre_restore_dir));
  const newRoot = path.resolve(root);
  const same = (() => {
    if (oldRoot === newRoot) return true;
    try {
      return fs.realpathSync(oldRoot) === fs.realpathSync(newRoot);
    } catch {
      return false;
    }
  })();
  if (same) return journal;
  const inside = (p: string) => {
    const rel = path.relative(oldRoot, path.resolve(p));
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : null;
  };
  const move = (p: string) => {
    const rel = inside(p);
    return rel === null ? p : path.join(newRoot, rel);
  };
  return {
    ...journal,
    pre_restore_dir: move(journal.pre_restore_dir),
    incoming_dir: journal.incoming_dir === null ? null : move(journal.incoming_dir),
    items: journal.items.map((i) => {
      const target = move(i.target);
      // The real file of a target inside the old root is the real file of its counterpart here.
      const real_target = inside(i.real_target) !== null ? move(i.real_target) : target !== i.target ? realTarget(target) : i.real_target;
      return { ...i, target, real_target, incoming: i.incoming === null ? null : move(i.incoming), kept: move(i.kept) };
    }),
  };
}

/**
 * Completes (when its record says the operation completed) or rolls back the swap of a journal
 * left in the root, then retires the journal.
 * @throws WbError `recovery_needed` saying what is where, when the journal cannot be read, the
 *   files do not match it (then nothing more is moved), or it cannot be removed
 */
function recoverJournal(root: string): RecoveryOutcome {
  const file = journalPath(root);
  const ctx: Ctx = { root, step: '' };
  // A temporary is a journal update that never took effect (the rename is what publishes it).
  if (exists(`${file}.tmp`)) steps.unlink(`${file}.tmp`);
  if (!exists(file)) return { action: 'none', notes: [] };
  const journal = loadJournal(file, root);
  const names = journal.items.map((i) => i.name);
  // The record is the commit point: written after the last move, removed first by a roll-back.
  const forward = readRecord(journal.pre_restore_dir)?.completed === true;
  replayJournal(ctx, journal, forward);
  const notes: string[] = [];
  try {
    retire(ctx, journal, notes);
  } catch (err) {
    throw new WbError(
      'recovery_needed',
      `An interrupted ${journal.kind} was ${forward ? 'completed' : 'rolled back'} (the live databases are ${forward ? 'all new' : 'as before'}, checked by sha256), but its journal could not be removed (${describeError(err)}).`,
      `${hintFor(err)} Then run any wb-backup command again: it removes the journal.`,
    );
  }
  const done = forward ? 'completed' : 'rolled back; the live databases are as before (checked by sha256)';
  logger().warn({ kind: journal.kind, snapshot: journal.snapshot_id, databases: names }, `an interrupted ${journal.kind} was ${done}`);
  return { action: forward ? 'rolled_forward' : 'rolled_back', kind: journal.kind, snapshot_id: journal.snapshot_id, databases: names, notes };
}

/**
 * The journal in `file`, its paths taken inside this root (see rebaseJournal).
 * @throws WbError `recovery_needed` for an older format (1, without checksums) or one that cannot be read
 */
function loadJournal(file: string, root: string): Journal {
  try {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown };
    if (raw.version === 1) {
      throw new WbError(
        'recovery_needed',
        'restore-journal.json was written by an older wb-backup (format 1, without checksums): this version moves no file on its word. Nothing was moved.',
        'Run the older version once (any command) to let it finish, or move the files it lists back by hand (each live file from db.pre_restore_*/<name>/), then remove the journal.',
      );
    }
    return rebaseJournal(JournalSchema.parse(raw), root);
  } catch (err) {
    if (err instanceof WbError) throw err;
    throw new WbError(
      'recovery_needed',
      `restore-journal.json cannot be read (${describeError(err).slice(0, 200)}), so an interrupted restore cannot be finished safely. Nothing was moved.`,
      'Inspect restore-journal.json and the db.pre_restore_* and db.staging_* folders by hand (every file is kept), then remove the journal.',
    );
  }
}

/**
 * Forward: every database to its new files (checked reachable first), and the folder an undo put
 * back removed once empty. Back: every database to its old files (putBack).
 * @throws WbError `recovery_needed` naming what is where; nothing more is moved
 */
function replayJournal(ctx: Ctx, journal: Journal, forward: boolean): void {
  try {
    if (forward) {
      checkReachable(ctx, journal.items, 'forward');
      for (const item of journal.items) {
        rollForwardItem(ctx, item);
        syncFolders(ctx, item);
      }
      removeSpentRecord(ctx, journal.undoes, []);
    } else {
      putBack(ctx, journal);
    }
  } catch (err) {
    throw new WbError(
      'recovery_needed',
      `An interrupted ${journal.kind}${journal.snapshot_id ? ` of ${journal.snapshot_id}` : ''} could not be ${forward ? 'completed' : 'rolled back'}: ${err instanceof Stuck ? '' : `${ctx.step} failed: `}${describeError(err)}. Nothing more was moved, and every copy is kept: ${describeFiles(ctx.root, journal)}.`,
      `${err instanceof Stuck ? 'Put the files named above back as the journal says (restore-journal.json lists each sha256), or move them by hand' : hintFor(err)}; then run any wb-backup command again.`,
    );
  }
}

/** pre_restore folders whose record is missing or not marked completed (and no journal refers to them). */
function incompleteRecordDirs(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith('db.pre_restore_'))
    .map((n) => path.join(root, n))
    .filter((dir) => readRecord(dir)?.completed !== true);
}

/**
 * Records left half-written (by a crash, or by an older wb-backup that wrote the record before its
 * journal): a folder holding no database file is removed; an older version's record whose every
 * listed file is there is adopted (marked completed); anything else is kept and reported.
 */
function settleRecords(root: string): string[] {
  if (exists(journalPath(root))) return [];
  const ctx: Ctx = { root, step: '' };
  const notes: string[] = [];
  for (const dir of incompleteRecordDirs(root)) {
    const info = readRecord(dir);
    const legacyComplete =
      info !== null && info.version === undefined && Array.isArray(info.databases) && info.databases.some((d) => d.existed) && info.databases.every((d) => !d.existed || exists(path.join(dir, d.name, d.file)));
    if (legacyComplete) {
      const adopted: PreRestoreInfo = {
        ...info,
        version: 2,
        completed: true,
        databases: info.databases.map((d) => ({ ...d, files: d.existed ? recordFiles(path.join(dir, d.name, d.file)) : {} })),
      };
      writeRecord(ctx, dir, adopted);
      continue;
    }
    if (removeEmptyRecordDir(dir)) {
      notes.push(`removed ${disp(ctx, dir)}: the record of an operation that never completed (it held no files)`);
    } else {
      notes.push(`kept ${disp(ctx, dir)}: it holds files but no record of a completed operation, so --undo does not use it (and refuses to undo an older copy in its place until it is moved out of the data root); look inside before deleting it`);
    }
  }
  for (const dir of spentRecordDirs(root)) {
    if (removeEmptyRecordDir(dir)) notes.push(`removed ${disp(ctx, dir)}: a restore that was undone (it held no files any more)`);
  }
  for (const n of notes) logger().warn({}, n);
  return notes;
}

/** Folders that a completed undo put back, still present (their removal failed or was cut short). */
function spentRecordDirs(root: string): string[] {
  const spent: string[] = [];
  for (const dir of listPreRestoreDirs(root)) {
    const undone = readRecord(dir)?.undoes;
    if (undone && exists(path.join(root, undone)) && filesIn(path.join(root, undone)).length === 0) spent.push(path.join(root, undone));
  }
  return spent;
}
