import { Option, type Command } from 'commander';
import { listSnapshots } from '../../backup/list.js';
import { loadConfig } from '../../root/config.js';
import { rootOf } from '../root.js';
import { out } from '../output.js';
import { printList } from '../snapshots.js';

/** `wb-backup list`: the snapshots, newest first, local and/or remote. */
export function registerList(program: Command): void {
  program
    .command('list')
    .description('list snapshots, newest first')
    .addOption(new Option('--where <where>', 'which copies to list').choices(['all', 'local', 'remote']).default('all'))
    .option('--json', 'print the list as JSON')
    .action(async (opts: { where: 'all' | 'local' | 'remote'; json?: boolean }, cmd: Command) => {
      const list = await listSnapshots(loadConfig(rootOf(cmd)), opts.where);
      if (opts.json) out(JSON.stringify(list, null, 2));
      else printList(list);
    });
}
