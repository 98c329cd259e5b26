import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../root/config.js';
import { loadConfig } from '../../root/config.js';
import { WbError } from '../../core/errors.js';
import { shutdownSignal, track } from '../../core/shutdown.js';
import { runRestore, type RestorePlan, type RestoreResult } from '../../restore/restore.js';
import { describeUndoPlan, runUndo, type UndoPlan, type UndoResult } from '../../restore/undo.js';
import { describeRestorePlan } from '../../restore/plan-text.js';
import { describeComparison } from '../../restore/compare.js';
import { describeSafetyCopies } from '../../restore/safety-copies.js';
import { progressBar } from '../progress.js';
import { rootOf } from '../root.js';
import { currentRoot, out } from '../output.js';
import { confirmOnTerminal } from '../prompt.js';
import { cliText } from '../wording.js';

interface RestoreOptions {
  db?: string[];
  dryRun?: boolean;
  force?: boolean;
  yes?: boolean;
  undo?: boolean;
  json?: boolean;
}

/** The undo's plan in the CLI's words: what goes back, rows now and after, what is lost, the safety copies. */
function describeUndo(plan: UndoPlan): string {
  return cliText(describeUndoPlan(plan), currentRoot);
}

/** The question asked before a restore replaces anything: the same plan text as MCP's, in the CLI's words. */
function describeRestore(plan: RestorePlan): string {
  return cliText(describeRestorePlan(plan), currentRoot);
}

/**
 * `restore --undo`: puts back what the most recent restore replaced.
 * @throws WbError `invalid_input` when a snapshot id or --db is given with it
 */
async function undoLastRestore(config: Config, id: string | undefined, opts: RestoreOptions): Promise<void> {
  // --undo always acts on the newest completed restore; an id here would be silently ignored.
  if (id || opts.db?.length) {
    throw new WbError('invalid_input', `--undo takes no snapshot id or --db: it puts back what the most recent restore replaced${id ? ` (it cannot undo ${id} in particular)` : ''}.`, 'Run `wb-backup restore --undo` alone (add --dry-run to see what it would put back).');
  }
  const result = await track(
    runUndo(config, {
      force: opts.force ?? false,
      dryRun: opts.dryRun ?? false,
      consent: (plan) => confirmOnTerminal(describeUndo(plan), opts.yes ?? false),
    }),
  );
  if (opts.json) out(JSON.stringify(result, null, 2));
  else if (opts.dryRun) out(`dry run (nothing changed): would undo.\n${describeUndo(result)}`);
  else out(`undone: ${describeUndo(result)}\nThe files the undo replaced are in ${path.join(result.data_root, (result as UndoResult).pre_restore_dir)}.`);
}

/** Runs the restore with a progress bar (stopped before the y/N question). */
async function restoreWithProgress(root: string, config: Config, id: string, opts: RestoreOptions): Promise<RestoreResult> {
  // Bytes unpacked, verified and swapped in, as the restore measures them (src/restore/restore.ts).
  const bar = progressBar(!opts.json);
  try {
    return await track(
      runRestore(config, {
        snapshotId: id,
        databases: opts.db,
        dryRun: opts.dryRun ?? false,
        force: opts.force ?? false,
        signal: shutdownSignal,
        onProgress: (done, total, message) => bar.update(done, total, message),
        consent: (plan) => {
          bar.stop();
          return confirmOnTerminal(describeRestore(plan), opts.yes ?? false);
        },
      }),
    );
  } finally {
    bar.stop();
  }
}

/** What a restore (or its dry run) prints for people. */
function printRestore(result: RestoreResult): void {
  const s = result.snapshot;
  const host = s.this_machine ? `this machine (${s.host})` : `another machine, host ${s.host}`;
  out(`${result.dry_run ? 'dry run (nothing changed): would restore' : 'restored'} ${result.snapshot_id} (taken ${s.age} on ${host}) in ${result.data_root}`);
  for (const d of result.databases) {
    const rows = Object.values(d.rows).reduce((a, b) => a + b, 0);
    const live = d.compared.live_total === null ? '' : `  (${d.compared.live_total} live ${result.dry_run ? 'now' : 'before'})`;
    out(`  ${d.name.padEnd(24)} -> ${d.target}  ${rows} rows${live}  schema ${d.from_user_version}->${d.to_user_version}${d.migrations_applied.length ? `  migrations: ${d.migrations_applied.join(', ')}` : ''}`);
    if (result.dry_run) for (const l of describeComparison(d.compared, 'snapshot')) out(`      ${l}`);
  }
  if (result.dry_run) out(`  what you lose: ${cliText(result.what_you_lose, currentRoot)}`);
  if (!result.dry_run) out(`  previous files: ${path.join(result.data_root, result.pre_restore_dir ?? '')} (undo with: wb-backup restore --undo)`);
  if (result.dry_run) out(`  ${describeSafetyCopies(result.safety_copies, { root: result.data_root, newCopySaid: true })}`);
  else if (result.pruned.length) out(`  removed old safety copies, as the plan said: ${result.pruned.join(', ')}`);
  for (const w of result.warnings) out(`  warning: ${cliText(w, currentRoot)}`);
}

/** `wb-backup restore [id]` and `restore --undo`. */
export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description('restore databases from a snapshot (verified in staging first; live files are kept in db.pre_restore_*)')
    .argument('[snapshot-id]', 'a snapshot id from `wb-backup list`, or "latest"')
    .option('--db <name...>', 'only these databases (default: all in the snapshot)')
    .option('--dry-run', 'verify everything and show the plan; change nothing')
    .option('--force', 'replace databases even when another process has them open')
    .option('-y, --yes', 'do not ask for confirmation (for scripts)')
    .option('--undo', 'put back the files the most recent restore replaced')
    .option('--json', 'print the result as JSON')
    .action(async (id: string | undefined, opts: RestoreOptions, cmd: Command) => {
      const root = rootOf(cmd);
      const config = loadConfig(root);
      if (opts.undo) return undoLastRestore(config, id, opts);
      if (!id) throw new WbError('invalid_input', 'Which snapshot? Pass a snapshot id (see `wb-backup list`) or "latest".');
      const result = await restoreWithProgress(root, config, id, opts);
      if (opts.json) return out(JSON.stringify(result, null, 2));
      printRestore(result);
    });
}
