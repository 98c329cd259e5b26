import fs from 'node:fs';
import { WbError } from './errors.js';
import { withRootLock } from './lock.js';
import { logger } from './log.js';
import { journalPath, leftoverStagingDirs, recoverInterruptedSwap, type RecoveryOutcome } from './restore/swap.js';

/**
 * Every wb-backup command starts here: a restore swap that a crash interrupted is completed or
 * rolled back before anything else reads the databases.
 */
export async function recoverOnStart(root: string): Promise<RecoveryOutcome> {
  if (!fs.existsSync(journalPath(root)) && leftoverStagingDirs(root).length === 0) return { action: 'none' };
  try {
    return await withRootLock(root, 'recovery', 5000, async () => recoverInterruptedSwap(root));
  } catch (err) {
    if (err instanceof WbError && err.code === 'busy') return { action: 'none' }; // the holder recovers it
    logger().error({ err: (err as Error).message }, 'recovering an interrupted restore failed');
    throw err;
  }
}
