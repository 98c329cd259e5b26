import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { listSnapshots } from '../../backup/list.js';
import { loadConfig } from '../../root/config.js';
import { expandHome } from '../../root/paths.js';
import { WbError } from '../../core/errors.js';
import { createDemoDatabases } from '../demo.js';
import { logFileOf, setUpLogging } from '../before-command.js';
import { out, setCurrentRoot } from '../output.js';
import { backupCommand, printBackup, printList } from '../snapshots.js';
import { rootLayout } from '../../root/paths.js';

/**
 * The demo's own data root, marked as the demo's so a real one is never reused.
 * @throws WbError `invalid_input` when the folder holds a db/ folder the demo did not make
 */
function demoRoot(dir: string): string {
  const root = path.resolve(expandHome(dir));
  if (fs.existsSync(rootLayout(root).dbDir) && !fs.existsSync(rootLayout(root).demoMarker)) {
    throw new WbError('invalid_input', `${dir} already holds a db/ folder that the demo did not make.`, 'Pass --dir with an empty or new folder.');
  }
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(rootLayout(root).demoMarker, 'made by wb-backup demo\n');
  return root;
}

/** `wb-backup demo`: example databases in a folder of their own, snapshotted twice and listed. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('make example databases in a folder of their own, snapshot them twice and list the snapshots')
    .option('--dir <dir>', 'demo folder (its own data root; never your real one)', 'wb-backup-demo')
    .action(async (opts: { dir: string }, cmd: Command) => {
      const root = demoRoot(opts.dir);
      setCurrentRoot(root);
      setUpLogging('demo', cmd.optsWithGlobals<{ verbose?: number }>().verbose ?? 0, logFileOf(root));
      const made = createDemoDatabases(rootLayout(root).dbDir);
      out(`demo data root: ${root}`);
      out(`example databases: ${made.map((f) => path.relative(root, f)).join(', ')}\n`);
      printBackup(await backupCommand(root, { manual: false }));
      out('');
      printBackup(await backupCommand(root, { manual: true }));
      out('\n$ wb-backup list');
      printList(await listSnapshots(loadConfig(root), 'all'));
      out(`\nTry: npx wb-backup --root ${path.relative(process.cwd(), root) || '.'} list --json`);
    });
}
