import { WbError, describeError } from '../core/errors.js';
import { withRootLock } from '../root/lock.js';
import { logger } from '../core/log.js';
import { needsRecovery, recoverInterruptedSwap, type RecoveryOutcome } from './recovery.js';

/**
 * Every wb-backup command starts here: a restore swap that a crash interrupted is completed or
 * rolled back before anything else reads the databases, and half-written pre_restore records are
 * settled. Throws WbError 'recovery_needed' (saying what is where) when that cannot be done safely.
 */
export async function recoverOnStart(root: string): Promise<RecoveryOutcome> {
  if (!needsRecovery(root)) return { action: 'none', notes: [] };
  try {
    return await withRootLock(root, 'recovery', 5000, async () => recoverInterruptedSwap(root));
  } catch (err) {
    if (err instanceof WbError && err.code === 'busy') return { action: 'none', notes: [] }; // the holder recovers it
    logger().error({ err: describeError(err) }, 'recovering an interrupted restore failed');
    throw err;
  }
}
