import type { Command } from 'commander';
import { resolveRoot } from '../root/paths.js';

/** The data root for a command: its global --root, else WB_BACKUP_HOME, else ./.data. */
export function rootOf(cmd: Command): string {
  return resolveRoot(cmd.optsWithGlobals<{ root?: string }>().root);
}
