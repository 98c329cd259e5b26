import type { Command } from 'commander';
import { rootOf } from '../root.js';
import { out } from '../output.js';
import { backupCommand, printBackup } from '../snapshots.js';

/** `wb-backup now`: a snapshot of every vital database, manual (an anchor) unless --no-manual. */
export function registerNow(program: Command): void {
  program
    .command('now')
    .description('take a snapshot of every vital database now')
    .option('--manual', 'a manual anchor snapshot, kept in the manual retention bucket (the default)')
    .option('--no-manual', 'a routine snapshot, thinned like the hourly ones')
    .option('--full', 'store every database whole, starting a new chain (default: only the pages changed since the newest snapshot)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { manual?: boolean; full?: boolean; json?: boolean }, cmd: Command) => {
      const result = await backupCommand(rootOf(cmd), opts);
      if (opts.json) out(JSON.stringify(result, null, 2));
      else printBackup(result);
    });
}
