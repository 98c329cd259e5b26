import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { withRootLock } from '../root/lock.js';
import { logger } from '../core/log.js';
import { displayPath } from '../root/paths.js';
import { whyInUse } from './in-use.js';
import type { ConsentDecision } from './restore.js';
import { fingerprintTargets, liveChangedReason } from '../root/consent.js';
import { planSafetyCopies, uniqueSafetyDir, type SafetyCopyPlan } from './safety-copies.js';
import { hashFile, type SwapItem } from './journal.js';
import { performSwap } from './swap.js';
import { listPreRestoreDirs, prunePreRestoreDirs, readPreRestoreInfo, type PreRestoreInfo } from './pre-restore.js';
import { recoverInterruptedSwap } from './recovery.js';

export interface UndoPlan {
  from: string;
  /** what is undone: a restore (of snapshotId) or an import */
  kind: 'restore' | 'import' | 'recover';
  snapshotId: string | null;
  databases: Array<{ name: string; target: string; action: 'put back' | 'remove (did not exist before)' }>;
  /** the current files go to a new safety copy; which existing copy this would remove */
  safety: SafetyCopyPlan;
}

export interface UndoResult extends UndoPlan {
  pre_restore_dir: string;
}

interface UndoOptions {
  force?: boolean;
  dryRun?: boolean;
  consent?: (plan: UndoPlan) => Promise<ConsentDecision>;
}

/** The safety copy an undo puts back: its folder, its completed record, and the folder as shown. */
interface UndoSource {
  dir: string;
  info: PreRestoreInfo;
  /** what it holds the files of (never an undo: that one is not undone again) */
  kind: UndoPlan['kind'];
  from: string;
}

/**
 * Put back the newest completed db.pre_restore_<ts>/ folder (of a restore or an import). The files
 * it replaces go to a new pre_restore folder, whose record says it undid the first one: a second
 * undo then answers "nothing to undo" instead of re-applying the restore. Only a completed record
 * is ever used, and every file it lists must still be there with its recorded sha256.
 */
export async function runUndo(config: Config, opts: UndoOptions): Promise<UndoResult | UndoPlan> {
  return withRootLock(config.root, 'restore --undo', config.backup.lock_wait_ms, async () => {
    // A dry run changes nothing: it leaves an interrupted restore to the next real command.
    if (!opts.dryRun) recoverInterruptedSwap(config.root);
    const source = newestUndoable(config.root);
    const items = undoItems(config, source);
    const preRestoreDir = uniqueSafetyDir(config.root);
    const plan = planUndo(config, source, items, preRestoreDir);
    if (opts.dryRun) return plan;
    await obtainUndoConsent(config, opts, items, plan);
    const swapped = performSwap({ root: config.root, kind: 'undo', snapshotId: source.info.snapshot_id, preRestoreDir, incomingDir: null, items, undoes: path.basename(source.dir) });
    pruneAfterUndo(config, plan);
    return { ...plan, pre_restore_dir: displayPath(config.root, swapped.preRestoreDir) };
  });
}

/**
 * The newest safety copy with a completed record, unless it is itself an undo's.
 * @throws WbError `not_found` when there is nothing to undo (or the last operation was already undone)
 */
function newestUndoable(root: string): UndoSource {
  const [newest] = listPreRestoreDirs(root);
  if (!newest) throw new WbError('not_found', 'Nothing to undo: there is no completed restore or import to undo (no db.pre_restore_* folder with a completed record).');
  const info = readPreRestoreInfo(newest);
  const from = displayPath(root, newest);
  if (info.kind === 'undo') {
    throw new WbError(
      'not_found',
      `Nothing to undo: the last ${info.snapshot_id ? `restore (${info.snapshot_id})` : 'import'} was already undone${info.undoes ? ` (${info.undoes})` : ''}; ${from} holds what that undo replaced.`,
      'To apply it again, restore the snapshot again.',
    );
  }
  return { dir: newest, info, kind: info.kind, from };
}

/**
 * What the swap puts back: each database's kept file to its target (none for one that did not exist before).
 * @throws WbError `restore_refused` when a target's folder is gone (a moved root) or a kept file is missing or changed
 */
function undoItems(config: Config, source: UndoSource): SwapItem[] {
  const { dir: newest, from } = source;
  return source.info.databases.map((d) => {
    const kept = path.join(newest, d.name, d.file);
    // Records name targets relative to the root; an absolute one (outside the root, or written by an
    // older version) is used only while its folder exists: else the root was moved since.
    const target = path.resolve(config.root, d.target);
    if (path.isAbsolute(d.target) && !fs.existsSync(path.dirname(target))) {
      throw new WbError(
        'restore_refused',
        `Refusing to undo: ${from} says ${d.name} lived at ${d.target}, whose folder no longer exists (was the data root moved or renamed?). Nothing was changed.`,
        `Put the files of ${displayPath(config.root, newest)} back by hand (each <name>/ folder holds one database's files).`,
      );
    }
    if (d.existed) {
      const problem = keptProblem(kept, d.files);
      if (problem) {
        throw new WbError('restore_refused', `Refusing to undo: ${displayPath(config.root, kept)} ${problem}, so ${from} cannot put ${d.name} back. Nothing was changed.`, 'Look inside that folder before doing anything by hand.');
      }
    }
    return { name: d.name, target, incoming: d.existed ? kept : null };
  });
}

/** The undo's plan: what a dry run returns and consent is asked for. */
function planUndo(config: Config, source: UndoSource, items: SwapItem[], preRestoreDir: string): UndoPlan {
  return {
    from: source.from,
    kind: source.kind,
    snapshotId: source.info.snapshot_id,
    databases: items.map((i) => ({ name: i.name, target: displayPath(config.root, i.target), action: i.incoming ? 'put back' : 'remove (did not exist before)' })),
    // The undo moves its source copy back into place, so that one is not counted as kept.
    safety: planSafetyCopies(config, { newCopy: preRestoreDir, consumes: [source.dir] }),
  };
}

/**
 * Refuses a database in use (unless forced), asks for consent, and checks the live files did not
 * change while the question was open.
 * @throws WbError `in_use`, `consent_required`
 */
async function obtainUndoConsent(config: Config, opts: UndoOptions, items: SwapItem[], plan: UndoPlan): Promise<void> {
  if (!opts.force) {
    for (const item of items) {
      const why = whyInUse(item.target);
      if (why) throw new WbError('in_use', `Refusing to undo: ${item.name} is in use: ${why}. Nothing was changed.`, 'Stop the program using it, or pass --force.');
    }
  }
  const shown = fingerprintTargets(items.map((i) => i.target));
  const decision = opts.consent ? await opts.consent(plan) : ({ granted: false, reason: 'no way to ask for consent was given' } as const);
  if (!decision.granted) throw new WbError('consent_required', `The undo was not performed: ${decision.reason}. Nothing was changed.`);
  const changed = liveChangedReason(shown, config.root, 'the plan was shown');
  if (changed) throw new WbError('consent_required', `The undo was not performed: ${changed}. Nothing was changed.`);
}

/** Removes the safety copy the consented plan named; a failure is logged (the undo is done and recorded). */
function pruneAfterUndo(config: Config, plan: UndoPlan): void {
  try {
    // Only the copy the consented plan named can go.
    prunePreRestoreDirs(
      config.root,
      plan.safety.keep,
      plan.safety.would_prune.map((p) => p.folder),
    );
  } catch (err) {
    // the undo is done and recorded; old folders are pruned next time
    logger().warn({ err: (err as Error).message }, 'old pre_restore folders could not be pruned');
  }
}

/** Why a kept file cannot be put back (missing, or not the file recorded), or null. */
function keptProblem(kept: string, files: Record<string, { size: number; sha256: string | null }> | undefined): string | null {
  if (!fs.existsSync(kept)) return 'is missing';
  for (const [role, rec] of Object.entries(files ?? {})) {
    if (rec.sha256 === null) continue;
    if (!fs.existsSync(kept + role)) return `has lost its ${role || 'main'} file`;
    if (hashFile(kept + role).sha256 !== rec.sha256) return `${role ? `(its ${role} file) ` : ''}is not the file that was set aside (its sha256 differs)`;
  }
  return null;
}
