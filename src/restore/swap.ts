import path from 'node:path';
import { WbError, describeError } from '../core/errors.js';
import { logger } from '../core/log.js';
import * as steps from './fs-steps.js';
import { clearHashCache, crashPoint, disp, exists, realTarget, recordFiles, writeJournal, type Ctx, type Journal, type JournalItem, type SwapItem, type SwapKind } from './journal.js';
import { hintFor, matchOwnership, removeStaging, retire, rollBackInProcess, rollForwardItem, syncFolders } from './moves.js';
import { recordOf, removeSpentRecord, writeRecord } from './pre-restore.js';

// github-sync's import (src/sync/import.ts) reaches these through swap.ts.

/**
 * The swap puts new database files in place of live ones (restore, undo, import), journaled so that
 * a failure at any step is rolled back in the same process, and a crash at any instant is completed
 * or rolled back by the next wb-backup command: the live set is never half old, half new.
 *
 * Order: journal (every live file's and every incoming file's sha256) -> move each database (live
 * files aside into <root>/db.pre_restore_<ts>/<name>/, incoming files into place; the journal is
 * rewritten after each) -> pre-restore.json (the record that the operation completed, and the commit
 * point: only then can `restore --undo` use the folder, and recovery completes rather than rolls
 * back) -> journal removed -> staging removed. Every move is checked
 * against the journal's hashes; recovery never deletes or moves a file unless the file that takes
 * its place exists and matches, and stops keeping every copy when it cannot. See docs/restore.md.
 */

export interface SwapRequest {
  root: string;
  kind: SwapKind;
  snapshotId: string | null;
  /** where the live files go; a unique name is chosen beside it if it already exists */
  preRestoreDir: string;
  /**
   * Staging folder holding the incoming files (null when they live elsewhere, as for an undo).
   * From the call on, the swap owns it: it is removed once the journal is retired, and kept while
   * a journal may still need it.
   */
  incomingDir: string | null;
  items: SwapItem[];
  /** for an undo: the pre_restore folder being put back */
  undoes?: string | null;
}

export interface SwapOutcome {
  /** the folder the live files went to (holds pre-restore.json) */
  preRestoreDir: string;
  /** something left for the next command to finish (the swap itself completed) */
  warnings: string[];
}

function uniqueDir(wanted: string): string {
  let dir = wanted;
  for (let i = 1; exists(dir); i++) dir = `${wanted}-${i}`;
  return dir;
}

/**
 * Move every live file aside and every incoming file into place, as one unit.
 * On success the pre_restore folder holds the old files and a completed pre-restore.json.
 * Throws WbError 'swap_failed' when a step failed and everything was put back (checked by sha256),
 * or 'recovery_needed' when putting back failed too (every copy kept; the journal stays for the
 * next command, and the message says what is where).
 */
export function performSwap(req: SwapRequest): SwapOutcome {
  clearHashCache();
  const ctx: Ctx = { root: req.root, step: 'reading the files to swap' };
  const preDir = uniqueDir(req.preRestoreDir);
  const warnings: string[] = [];
  const journal = journalFor(ctx, req, preDir);
  try {
    moveAll(ctx, journal);
  } catch (err) {
    rollBackInProcess(ctx, journal, err);
  }
  removeSpentRecord(ctx, journal.undoes, warnings);
  try {
    retire(ctx, journal, warnings);
  } catch (err) {
    // Done and recorded; only the journal is left: the next command sees every database moved and
    // finishes (it keeps staging until then).
    warnings.push(`the ${req.kind} completed, but its journal could not be removed (${describeError(err)}); the next wb-backup command finishes it`);
  }
  for (const w of warnings) logger().warn({ kind: req.kind }, w);
  return { preRestoreDir: preDir, warnings };
}

/**
 * The journal of this swap: every live and incoming file of each database, hashed, and where each
 * goes. Nothing has moved yet; on failure the staging folder is removed.
 * @throws WbError `restore_refused` (an incoming file is missing, two databases share one file),
 *   `swap_failed` when a file cannot be read
 */
function journalFor(ctx: Ctx, req: SwapRequest, preDir: string): Journal {
  try {
    const items = req.items.map((i): JournalItem => {
      const real = realTarget(i.target);
      return { name: i.name, target: i.target, real_target: real, incoming: i.incoming, kept: path.join(preDir, i.name, path.basename(real)), old: recordFiles(real), new: recordFiles(i.incoming) };
    });
    const seen = new Set<string>();
    for (const i of items) {
      if (i.incoming !== null && !i.new['']) throw new WbError('restore_refused', `The new file for ${i.name} is missing. Nothing was changed.`);
      if (seen.has(i.real_target)) throw new WbError('restore_refused', `Two databases lead to the same file ${disp(ctx, i.real_target)}. Nothing was changed.`, 'Give each database its own file.');
      seen.add(i.real_target);
    }
    return {
      version: 2,
      kind: req.kind,
      snapshot_id: req.snapshotId,
      started_at: new Date().toISOString(),
      pre_restore_dir: preDir,
      incoming_dir: req.incomingDir,
      undoes: req.undoes ?? null,
      items,
      moved: [],
    };
  } catch (err) {
    removeStaging(ctx, req.incomingDir);
    if (err instanceof WbError) throw err;
    throw new WbError('swap_failed', `The ${req.kind} failed while ${ctx.step} (${describeError(err)}). Nothing was changed.`, hintFor(err));
  }
}

/**
 * The swap's steps, in order: the journal written, the pre_restore folder made, each database
 * moved (the journal rewritten after each), and last the record, the commit point.
 * @throws whatever step failed (ctx.step says which); the caller rolls back
 */
function moveAll(ctx: Ctx, journal: Journal): void {
  const preDir = journal.pre_restore_dir;
  writeJournal(ctx, journal);
  crashPoint('after-journal');
  ctx.step = `creating ${disp(ctx, preDir)}`;
  steps.mkdirExclusive(preDir);
  for (const [index, item] of journal.items.entries()) {
    if (index > 0) crashPoint('between-moves');
    matchOwnership(ctx, item);
    rollForwardItem(ctx, item, index === 0 ? () => crashPoint('after-move-aside') : undefined);
    syncFolders(ctx, item);
    journal.moved.push(item.name);
    writeJournal(ctx, journal);
  }
  crashPoint('after-last-move');
  writeRecord(ctx, preDir, recordOf(ctx.root, journal));
  crashPoint('after-record');
}
