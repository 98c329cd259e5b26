import path from 'node:path';
import { Option, type Command } from 'commander';
import { SYNC_MODES, type SyncMode } from '../../sync/config.js';
import { loadConfig } from '../../root/config.js';
import { rootOf } from '../root.js';
import { cliText } from '../wording.js';
import { confirmOnTerminal } from '../prompt.js';
import type { ImportPlan } from '../../sync/import.js';
import type { ConsentDecision } from '../../restore/restore.js';

/** `wb-backup sync push | pull | status | import <clone-dir>`: the readable mirror of the databases in git. */
export function registerSyncCommand(program: Command): void {
  const sync = program.command('sync').description('github-sync: mirror the databases as readable files in a git repository');
  registerPush(sync);
  registerPull(sync);
  registerStatus(sync);
  registerImport(sync);
}

/** `sync push`: exit 1 when the remote moved (remote_changed). */
function registerPush(sync: Command): void {
  sync
    .command('push')
    .description('commit and push the mirror (one commit, never forced; a remote that moved is refused or gets a pull request, per mode)')
    .option('--dry-run', 'show which files would change')
    .addOption(new Option('--mode <mode>', 'override sync.github.mode for this push').choices([...SYNC_MODES]))
    .option('--json', 'print the result as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean; mode?: SyncMode }, cmd: Command) => {
      const { syncPush } = await import('../../sync/push.js');
      const result = await syncPush(loadConfig(rootOf(cmd)), { dryRun: opts.dryRun ?? false, ...(opts.mode ? { mode: opts.mode } : {}) });
      const paths = result.status === 'remote_changed' ? (result.remote_changed_paths ?? []) : result.files_changed;
      // What was left out is said in the text too: a push that mirrored one database of three is not just "pushed".
      const left = [...result.skipped.map((s) => `  skipped ${s.path}: ${s.reason}`), ...result.warnings.map((w) => `  warning ${w.table}: ${w.reason}`)];
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.status}: ${cliText(result.message)}\n${[...paths.map((p) => `  ${p}`), ...left].join('\n')}\n`);
      if (result.status === 'remote_changed') process.exitCode = 1;
    });
}

/** `sync pull`: exit 1 when rows conflict. */
function registerPull(sync: Command): void {
  sync
    .command('pull')
    .description('apply row edits made on the remote (three-way per row; conflicts are reported, not overwritten)')
    .option('--dry-run', 'show what would be applied')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const { syncPull } = await import('../../sync/pull.js');
      const result = await syncPull(loadConfig(rootOf(cmd)), { dryRun: opts.dryRun ?? false });
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.status}: ${cliText(result.message)}\n${[...result.conflicts.map((c) => `  conflict ${c.table} ${c.key}`), ...result.rejected.map((r) => `  rejected ${r.path}: ${r.reason}`)].join('\n')}\n`);
      if (result.status === 'conflicts') process.exitCode = 1;
    });
}

function registerStatus(sync: Command): void {
  sync
    .command('status')
    .description('rows changed here and on the remote since the last sync')
    .option('--json', 'print the status as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { syncStatus } = await import('../../sync/status.js');
      const result = await syncStatus(loadConfig(rootOf(cmd)));
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${cliText(result.message)}\n`);
    });
}

/** `sync import <clone-dir>`: replacing existing databases needs --force, then a yes. */
function registerImport(sync: Command): void {
  sync
    .command('import')
    .description('rebuild the databases from a clone of the sync repository')
    .argument('<clone-dir>', 'folder of a git clone of the sync repository')
    .option('--dry-run', 'show what would be rebuilt')
    .option('--force', 'replace existing databases (asks y/N on a terminal; the old files go to a new db.pre_restore_* folder: restore --undo puts them back)')
    .option('-y, --yes', 'with --force: do not ask (for scripts)')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, opts: { dryRun?: boolean; force?: boolean; yes?: boolean; json?: boolean }, cmd: Command) => {
      const { syncImport } = await import('../../sync/import.js');
      const result = await syncImport(loadConfig(rootOf(cmd)), path.resolve(dir), {
        dryRun: opts.dryRun ?? false,
        force: opts.force ?? false,
        // Replacing needs --force (intent) and then a yes (consent): never a silent yes.
        ...(opts.force ? { consent: (plan: ImportPlan) => confirmImport(plan, opts.yes ?? false) } : {}),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${cliText(result.message)}\n${result.databases.map((d) => `  ${d.name} -> ${d.target}`).join('\n')}\n`);
    });
}

/** The y/N question before an import replaces databases (what it replaces, the safety copies, warnings). */
async function confirmImport(plan: ImportPlan, yes: boolean): Promise<ConsentDecision> {
  const { describeSafetyCopies } = await import('../../restore/safety-copies.js');
  const replaced = plan.databases.filter((d) => d.replaced).map((d) => `  ${d.name} -> ${d.target}`);
  const warnings = plan.warnings.map((w) => `\nwarning: ${cliText(w)}`).join('');
  return confirmOnTerminal(`Import replaces:\n${replaced.join('\n')}\n${describeSafetyCopies(plan.safety)}${warnings}`, yes);
}
