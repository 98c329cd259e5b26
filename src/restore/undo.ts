import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { WbError } from '../errors.js';
import { withRootLock } from '../lock.js';
import { displayPath } from '../paths.js';
import { whyInUse } from './in-use.js';
import type { ConsentDecision } from './restore.js';
import { fingerprintTargets, liveChangedReason } from '../consent.js';
import { planSafetyCopies, uniqueSafetyDir, type SafetyCopyPlan } from './safety-copies.js';
import { listPreRestoreDirs, performSwap, prunePreRestoreDirs, readPreRestoreInfo, recoverInterruptedSwap } from './swap.js';

export interface UndoPlan {
  from: string;
  snapshotId: string | null;
  databases: Array<{ name: string; target: string; action: 'put back' | 'remove (did not exist before)' }>;
  /** the current files go to a new safety copy; which existing copy this would remove */
  safety: SafetyCopyPlan;
}

export interface UndoResult extends UndoPlan {
  pre_restore_dir: string;
}

/**
 * Put back the newest db.pre_restore_<ts>/ folder. The files it replaces go to a new pre_restore
 * folder, so an undo can itself be undone.
 */
export async function runUndo(
  config: Config,
  opts: { force?: boolean; dryRun?: boolean; consent?: (plan: UndoPlan) => Promise<ConsentDecision> },
): Promise<UndoResult | UndoPlan> {
  return withRootLock(config.root, 'restore --undo', config.backup.lock_wait_ms, async () => {
    // A dry run changes nothing: it leaves an interrupted restore to the next real command.
    if (!opts.dryRun) recoverInterruptedSwap(config.root);
    const [newest] = listPreRestoreDirs(config.root);
    if (!newest) throw new WbError('not_found', 'There is no earlier restore to undo (no db.pre_restore_* folder).');
    const info = readPreRestoreInfo(newest);
    const items = info.databases.map((d) => {
      const incoming = path.join(newest, d.name, d.file);
      return { name: d.name, target: d.target, incoming: d.existed && fs.existsSync(incoming) ? incoming : null };
    });
    const preRestoreDir = uniqueSafetyDir(config.root);
    const plan: UndoPlan = {
      from: displayPath(config.root, newest),
      snapshotId: info.snapshot_id,
      databases: items.map((i) => ({ name: i.name, target: displayPath(config.root, i.target), action: i.incoming ? 'put back' : 'remove (did not exist before)' })),
      // The undo moves its source copy back into place, so that one is not counted as kept.
      safety: planSafetyCopies(config, { newCopy: preRestoreDir, consumes: [newest] }),
    };
    if (opts.dryRun) return plan;
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
    performSwap({ root: config.root, kind: 'undo', snapshotId: info.snapshot_id, preRestoreDir, incomingDir: newest, items });
    prunePreRestoreDirs(
      config.root,
      plan.safety.keep,
      plan.safety.would_prune.map((p) => p.folder),
    );
    return { ...plan, pre_restore_dir: displayPath(config.root, preRestoreDir) };
  });
}
