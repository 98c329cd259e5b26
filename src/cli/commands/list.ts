import { Option, type Command } from 'commander';
import { ListHostSchema, listSnapshots } from '../../backup/list.js';
import { WbError } from '../../core/errors.js';
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
    .option('--host <name>', "whose snapshots: a host name, or all (default: this machine's)")
    .option('--json', 'print the list as JSON')
    .action(async (opts: { where: 'all' | 'local' | 'remote'; host?: string; json?: boolean }, cmd: Command) => {
      const host = opts.host === undefined ? undefined : ListHostSchema.safeParse(opts.host);
      if (host && !host.success) {
        throw new WbError('invalid_input', `--host ${JSON.stringify(opts.host)} is not a host name.`, 'Give a host name as `wb-backup list --host all` shows them (lowercase letters, digits and "-"), or all.');
      }
      const list = await listSnapshots(loadConfig(rootOf(cmd)), opts.where, undefined, host ? { host: host.data } : {});
      if (opts.json) out(JSON.stringify(list, null, 2));
      else printList(list);
    });
}
