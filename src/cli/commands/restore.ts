import type { Command } from 'commander';
import type { Config } from '../../root/config.js';
import { loadConfig } from '../../root/config.js';
import { WbError } from '../../core/errors.js';
import { shutdownSignal, track } from '../../core/shutdown.js';
import { runRestore, type RestorePlan, type RestoreResult } from '../../restore/restore.js';
import { runUndo, type UndoPlan } from '../../restore/undo.js';
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

function describeUndo(plan: UndoPlan): string {
  const before = plan.kind === 'import' ? 'importing from the mirror' : `restoring ${plan.snapshotId ?? 'a snapshot'}`;
  return `${plan.from} (before ${before}): ${plan.databases.map((d) => `${d.name} ${d.action} at ${d.target}`).join('; ')}\n${describeSafetyCopies(plan.safety, { undo: true })}`;
}

/** The question asked before a restore replaces anything: what goes where, the safety copies, warnings. */
function describeRestorePlan(plan: RestorePlan): string {
  const lines = plan.databases.map((d) => `  ${d.name} -> ${d.target}${d.migrations_applied.length ? ` (migrations: ${d.migrations_applied.join(', ')})` : ''}`);
  return [`Restore ${plan.snapshotId} over:`, ...lines, describeSafetyCopies(plan.safety), ...plan.warnings.map((w) => `warning: ${cliText(w, currentRoot)}`)].join('\n');
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
  else out(`${opts.dryRun ? 'would undo' : 'undone'}: ${describeUndo(result)}`);
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
          return confirmOnTerminal(describeRestorePlan(plan), opts.yes ?? false);
        },
      }),
    );
  } finally {
    bar.stop();
  }
}

/** What a restore (or its dry run) prints for people. */
function printRestore(result: RestoreResult): void {
  out(`${result.dry_run ? 'dry run (nothing changed): would restore' : 'restored'} ${result.snapshot_id}`);
  for (const d of result.databases) {
    const rows = Object.values(d.rows).reduce((a, b) => a + b, 0);
    out(`  ${d.name.padEnd(24)} -> ${d.target}  ${rows} rows  schema ${d.from_user_version}->${d.to_user_version}${d.migrations_applied.length ? `  migrations: ${d.migrations_applied.join(', ')}` : ''}`);
  }
  if (!result.dry_run) out(`  previous files: ${result.pre_restore_dir} (undo with: wb-backup restore --undo)`);
  if (result.dry_run) out(`  ${describeSafetyCopies(result.safety_copies)}`);
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
