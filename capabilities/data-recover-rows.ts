import { z } from 'zod';
import type { CapabilityContext } from '../src/capability/capability.js';
import { defineCapability } from '../src/capability/capability.js';
import { WbError } from '../src/core/errors.js';
import { askToConfirm } from '../src/capability/confirm-form.js';
import type { ConsentDecision } from '../src/restore/restore.js';
import { RecoverResultSchema, runRecover, type RecoverConsentPlan } from '../src/recover/recover.js';
import { describePlanCounts, describeRecoverPlan } from '../src/recover/plan-text.js';

const KeyValue = z.union([z.string(), z.number(), z.null()]);

const Input = z.object({
  snapshot_id: z.string().min(1).describe('the snapshot that still holds the rows (from data_backup_list or data_snapshot_diff), or "latest"'),
  database: z.string().min(1).describe('the database\'s logical name, as data_backup_list shows it'),
  table: z.string().min(1).describe('the table whose rows to put back'),
  keys: z
    .array(z.union([KeyValue, z.array(KeyValue).min(1)]))
    .min(1)
    .max(100_000)
    .optional()
    .describe('the rows by primary key (or rowid for a table without one): one value each, or a list of values for a composite key. Give keys or where'),
  where: z.string().max(2000).optional().describe('the rows by a plain SQL expression over the table\'s columns, evaluated on the snapshot only, e.g. "project_id = 3". No statements, subqueries, comments or semicolons'),
  include: z.array(z.enum(['parents', 'children'])).default([]).describe('"parents": also put back parent rows the chosen rows need that are missing live; "children": also rows that depend on them in the snapshot and are missing live (e.g. removed by ON DELETE CASCADE)'),
  on_conflict: z.enum(['refuse', 'keep_live', 'use_snapshot']).default('refuse').describe('a chosen row that exists live with other values: refuse (default: nothing is done), keep_live (leave it), use_snapshot (overwrite it with the snapshot\'s values)'),
  dry_run: z.boolean().default(false).describe('compute and return the plan and a confirm_token, changing nothing'),
  confirm_token: z.string().max(200).optional().describe('the token a dry run of exactly the same arguments returned, after the user saw its plan and agreed. Single use; refused when the snapshot, the rows or the live database changed since'),
});

function consentFor(input: z.infer<typeof Input>, ctx: CapabilityContext): ((plan: RecoverConsentPlan) => Promise<ConsentDecision>) | 'token' {
  if (input.confirm_token !== undefined) return 'token';
  const elicit = ctx.elicit;
  if (!elicit) {
    throw new WbError(
      'consent_required',
      'Recovering rows writes to the live database, so it needs the user’s consent, and this client cannot ask the user directly. Nothing was changed.',
      'Call data_recover_rows with dry_run: true, show the user the plan, and if they agree call it again with the same arguments plus the confirm_token the dry run returned (it works once).',
    );
  }
  return (plan) => askToConfirm(elicit, describeRecoverPlan(plan), { title: 'Put these rows back into the live database', description: 'A manual snapshot of every database is taken first; restoring it undoes this.', operation: 'row recovery' });
}

export default defineCapability({
  name: 'data_recover_rows',
  title: 'Recover rows from a snapshot',
  description:
    'Put chosen rows of one table back from a snapshot into the live database, keeping every other change made since: the remedy for a mistaken DELETE or UPDATE. Use it after finding the snapshot that still holds the rows (data_backup_list, then data_snapshot_diff between snapshots or against "live"). ' +
    'Choose rows by keys (primary key, or rowid) or a plain where expression evaluated on the snapshot only. Rows missing live are inserted as the snapshot holds them; rows live exactly as in the snapshot are counted as already there; rows live with other values are conflicts, refused unless on_conflict says keep_live or use_snapshot. ' +
    'Foreign keys: the plan reports parents the rows need that are missing live (parents_missing) and rows depending on them in the snapshot that are missing live, e.g. removed by ON DELETE CASCADE (children_missing), with counts and samples; include ["parents","children"] brings them back too. blocked_by says what stops the plan and what to pass. ' +
    'DESTRUCTIVE (writes the live database): consent is required, through an elicitation prompt when the client supports it; otherwise call with dry_run: true, show the user the plan, and call again with the same arguments plus the returned confirm_token (once, 10 minutes, refused if the snapshot, rows or live database changed). A dry run changes nothing. ' +
    'Before writing, a manual snapshot of every database is taken (safety_snapshot_id: data_restore of it with databases [database] undoes the recovery); the rows are written in one transaction with foreign keys on and checked, and roll back entirely on any failure; a record is kept under the data root (record: "pending" until the commit is done, then "completed"). ' +
    'Returns counts first (to_insert, already_there, conflicts, parents/children included), samples of the rows, and what blocks. After it, data_snapshot_diff from the snapshot to "live" shows what is still missing.',
  input: Input,
  output: RecoverResultSchema,
  annotations: { title: 'Recover rows from a snapshot', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  async run(input, ctx) {
    if ((input.keys === undefined) === (input.where === undefined)) {
      throw new WbError('invalid_input', 'Choose the rows with keys or with where (exactly one of the two).', 'keys: primary key values (or rowids); where: a plain expression such as "project_id = 3".');
    }
    const config = ctx.loadConfig();
    const consent = input.dry_run ? undefined : consentFor(input, ctx);
    const result = await runRecover(config, {
      snapshotId: input.snapshot_id,
      database: input.database,
      table: input.table,
      keys: input.keys,
      where: input.where,
      include: input.include,
      onConflict: input.on_conflict,
      dryRun: input.dry_run,
      ...(consent === 'token' ? { confirmToken: input.confirm_token } : consent ? { consent } : {}),
      signal: ctx.signal,
    });
    const counts = describePlanCounts(result.plan).join(' ');
    const c = result.plan.counts;
    let summary: string;
    if (result.dry_run) {
      summary = result.confirm_token
        ? `Dry run of recovering rows of ${result.database}.${result.plan.table} from ${result.snapshot_id}: nothing changed. ${counts} Show the user this plan; to proceed call data_recover_rows again with the same arguments and confirm_token "${result.confirm_token}" (it works once).`
        : `Dry run of recovering rows of ${result.database}.${result.plan.table} from ${result.snapshot_id}: nothing changed, and nothing can be done as asked. ${counts}`;
    } else if (!result.applied) {
      summary = `Nothing to recover: the chosen rows of ${result.database}.${result.plan.table} are already live as in ${result.snapshot_id}. ${counts}`;
    } else {
      summary = `Recovered ${c.to_insert + c.to_update} row(s) into ${result.database} from ${result.snapshot_id} (${c.to_insert} inserted, ${c.to_update} overwritten, ${c.already_there} already there). The safety snapshot ${result.safety_snapshot_id} was taken first: data_restore of it with databases ["${result.database}"] undoes this. Record: ${result.record}.`;
    }
    return { result, summary: result.warnings.length ? `${summary} Warnings: ${result.warnings.join(' ')}` : summary };
  },
});
