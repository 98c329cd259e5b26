import type { Command } from 'commander';
import { loadConfig } from '../../root/config.js';
import { WbError } from '../../core/errors.js';
import { shutdownSignal, track } from '../../core/shutdown.js';
import { runRecover, type RecoverResult } from '../../recover/recover.js';
import { describePlanCounts, describeRecoverPlan } from '../../recover/plan-text.js';
import type { IncludeKind, OnConflict } from '../../recover/plan.js';
import type { SqlValue } from '../../recover/rows.js';
import { rootOf } from '../root.js';
import { currentRoot, out } from '../output.js';
import { confirmOnTerminal } from '../prompt.js';
import { cliText } from '../wording.js';

interface RecoverCliOptions {
  db: string;
  table: string;
  key?: string[];
  where?: string;
  include?: string;
  onConflict?: string;
  dryRun?: boolean;
  yes?: boolean;
  json?: boolean;
}

/** A --key value: a JSON number, string, null or list (a composite key), else the text as it is. */
function parseKey(text: string): SqlValue | SqlValue[] {
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v === 'number' || typeof v === 'string') return v;
    if (Array.isArray(v) && v.every((x) => x === null || typeof x === 'number' || typeof x === 'string')) return v as SqlValue[];
  } catch {
    /* plain text */
  }
  return text;
}

function parseInclude(text: string | undefined): IncludeKind[] {
  if (!text) return [];
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = parts.filter((p) => p !== 'parents' && p !== 'children');
  if (bad.length) throw new WbError('invalid_input', `--include takes parents, children or both (comma-separated); got ${bad.join(', ')}.`);
  return parts as IncludeKind[];
}

function parseOnConflict(text: string | undefined): OnConflict {
  if (text === undefined) return 'refuse';
  if (text === 'refuse' || text === 'keep_live' || text === 'use_snapshot') return text;
  throw new WbError('invalid_input', `--on-conflict takes refuse, keep_live or use_snapshot; got ${text}.`);
}

function printResult(result: RecoverResult): void {
  const head = result.dry_run ? 'dry run (nothing changed): would recover' : result.applied ? 'recovered' : 'nothing to recover:';
  out(`${head} rows of ${result.database}.${result.plan.table} from ${result.snapshot_id} into ${result.target}`);
  for (const l of describePlanCounts(result.plan)) out(`  ${cliText(l, currentRoot)}`);
  if (result.applied) out(`  safety snapshot taken first: ${result.safety_snapshot_id} (undo with: wb-backup restore ${result.safety_snapshot_id} --db ${result.database})\n  record: ${result.record}`);
  if (result.dry_run && result.confirm_token) out('  run it again without --dry-run to recover these rows (you will be asked to confirm)');
  for (const w of result.warnings) out(`  warning: ${cliText(w, currentRoot)}`);
}

/** `wb-backup recover <id> --db name --table t (--key K... | --where SQL)`: data_recover_rows on the command line. */
export function registerRecover(program: Command): void {
  program
    .command('recover')
    .description('put chosen rows of one table back from a snapshot into the live database (a safety snapshot is taken first)')
    .argument('<snapshot-id>', 'the snapshot that still holds the rows (see `wb-backup list`), or "latest"')
    .requiredOption('--db <name>', 'the database')
    .requiredOption('--table <table>', 'the table whose rows to put back')
    .option('--key <value...>', 'rows by primary key (or rowid); a composite key as a JSON list, e.g. \'[1,"a"]\'')
    .option('--where <expression>', 'rows by a plain SQL expression evaluated on the snapshot, e.g. "project_id = 3"')
    .option('--include <kinds>', 'also put back missing parents, children (removed by a cascade), or both: parents,children')
    .option('--on-conflict <how>', 'a row live with other values: refuse (default), keep_live or use_snapshot')
    .option('--dry-run', 'show the plan; change nothing')
    .option('-y, --yes', 'do not ask for confirmation (for scripts)')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: RecoverCliOptions, cmd: Command) => {
      if ((opts.key === undefined) === (opts.where === undefined)) throw new WbError('invalid_input', 'Choose the rows with --key or with --where (one of the two).');
      const config = loadConfig(rootOf(cmd));
      const result = await track(
        runRecover(config, {
          snapshotId: id,
          database: opts.db,
          table: opts.table,
          keys: opts.key?.map(parseKey),
          where: opts.where,
          include: parseInclude(opts.include),
          onConflict: parseOnConflict(opts.onConflict),
          dryRun: opts.dryRun ?? false,
          consent: (plan) => confirmOnTerminal(cliText(describeRecoverPlan(plan), currentRoot), opts.yes ?? false),
          signal: shutdownSignal,
        }),
      );
      if (opts.json) return out(JSON.stringify(result, null, 2));
      printResult(result);
    });
}
