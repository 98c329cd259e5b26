import path from 'node:path';
import { z } from 'zod';
import type { CapabilityContext } from '../src/capability/capability.js';
import { defineCapability } from '../src/capability/capability.js';
import { WbError } from '../src/core/errors.js';
import { RowComparisonSchema, describeComparison } from '../src/restore/compare.js';
import { SafetyCopyPlanSchema, describeSafetyCopies } from '../src/restore/safety-copies.js';
import type { ConsentDecision } from '../src/restore/restore.js';
import { describeUndoPlan, runUndoIfAny, type UndoPlan } from '../src/restore/undo.js';
import { askToConfirm } from '../src/capability/confirm-form.js';

const Input = z.object({
  dry_run: z.boolean().default(false).describe('show what the undo would put back and what it throws away, with a confirm_token; change nothing'),
  confirm_token: z
    .string()
    .max(200)
    .optional()
    .describe('the token a dry run returned, after the user saw its plan and agreed. Single use; refused when the live databases or the safety copies changed since the dry run'),
  force: z.boolean().default(false).describe('put the files back even when another process has a database open. Does not replace consent'),
});

const Output = z.object({
  status: z.enum(['undone', 'dry_run', 'nothing_to_undo']),
  data_root: z.string().describe('the data root, absolute'),
  reason: z.string().nullable().describe('nothing_to_undo: why (no completed restore or import, or the last one was already undone)'),
  kind: z.enum(['restore', 'import', 'recover']).nullable().describe('what is undone'),
  snapshot_id: z.string().nullable().describe('the snapshot the undone restore had put in place'),
  put_back_from: z.string().nullable().describe('the safety copy whose files go back into place (absolute)'),
  undone_age: z.string().nullable().describe('how long ago the undone operation replaced the files'),
  databases: z
    .array(z.object({ name: z.string(), target: z.string(), action: z.string(), compared: RowComparisonSchema.describe('rows live now (the restored state) against the rows put back') }))
    .describe('per database: where it goes back and the rows per table now against after'),
  what_you_lose: z.string().nullable().describe('plainly: what the current (restored) state has that the undo throws away, and where it is kept'),
  safety_copies: SafetyCopyPlanSchema.nullable(),
  restored_files_kept_in: z.string().nullable().describe('undone: the new safety copy (absolute) that holds the files the undo replaced'),
  confirm_token: z.string().optional().describe('dry run only: pass it back with the same force to perform exactly this plan; works once'),
});
type Out = z.infer<typeof Output>;

function consentFor(input: z.infer<typeof Input>, ctx: CapabilityContext): ((plan: UndoPlan) => Promise<ConsentDecision>) | 'token' {
  if (input.confirm_token !== undefined) return 'token';
  const elicit = ctx.elicit;
  if (!elicit) {
    throw new WbError(
      'consent_required',
      'An undo replaces the live databases with the files the last restore set aside, so it needs the user’s consent, and this client cannot ask the user directly. Nothing was changed.',
      'Call data_restore_undo with dry_run: true, show the user the plan (what it puts back and what it throws away), and if they agree call it again with the same force plus the confirm_token the dry run returned (it works once).',
    );
  }
  return (plan) =>
    askToConfirm(elicit, describeUndoPlan(plan), {
      title: 'Put the previous files back (undo the last restore)',
      description: describeSafetyCopies(plan.safety, { undo: true, root: plan.data_root }),
      operation: 'undo',
    });
}

function fromPlan(plan: UndoPlan): Omit<Out, 'status' | 'restored_files_kept_in' | 'confirm_token'> {
  return {
    data_root: plan.data_root,
    reason: null,
    kind: plan.kind,
    snapshot_id: plan.snapshotId,
    put_back_from: path.join(plan.data_root, plan.from),
    undone_age: plan.undone_age,
    databases: plan.databases,
    what_you_lose: plan.what_you_lose,
    safety_copies: plan.safety,
  };
}

const comparison = (plan: UndoPlan) => plan.databases.map((d) => `${d.name} (${d.target}): ${describeComparison(d.compared, 'after undo').join('; ')}.`).join(' ');

export default defineCapability({
  name: 'data_restore_undo',
  title: 'Undo the last restore',
  description:
    'Put back the files the most recent data_restore (or github_sync_import) replaced: the newest db.pre_restore_<time>/ safety copy goes back into place. Use it when a restore brought back the wrong data or the user wants what they had before. ' +
    'DESTRUCTIVE: the current (restored) files are moved to a new safety copy, which the result names (absolute path); they are kept, but a later undo does not put them back (restore the snapshot again for that). Only the last operation is undone; calling it again answers status "nothing_to_undo" (not an error) and changes nothing. ' +
    'Consent is required, as for data_restore: through an elicitation prompt when the client supports it; otherwise call first with dry_run: true (changes nothing), show the user the plan (per database the rows now against after, what_you_lose, the safety copy it would remove), and call again with the same force plus the returned confirm_token (single use, 10 minutes, refused when the live databases changed). ' +
    'A database open in another process is refused unless force: true. Returns status (undone, dry_run or nothing_to_undo), what was put back from where, per database the rows compared, and restored_files_kept_in. Next: data_backup_list or health_status to check the state.',
  input: Input,
  output: Output,
  annotations: { title: 'Undo the last restore', readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  async run(input, ctx) {
    const config = ctx.loadConfig();
    const consent = input.dry_run ? undefined : consentFor(input, ctx);
    const outcome = await runUndoIfAny(config, {
      dryRun: input.dry_run,
      force: input.force,
      issueToken: true,
      ...(consent === 'token' ? { confirmToken: input.confirm_token } : consent ? { consent } : {}),
    });
    if ('nothing_to_undo' in outcome) {
      const result: Out = {
        status: 'nothing_to_undo',
        data_root: config.root,
        reason: outcome.reason,
        kind: null,
        snapshot_id: null,
        put_back_from: null,
        undone_age: null,
        databases: [],
        what_you_lose: null,
        safety_copies: null,
        restored_files_kept_in: null,
      };
      return { result, summary: `${outcome.reason}${outcome.hint ? ` ${outcome.hint}` : ''} Nothing was changed.` };
    }
    if (input.dry_run) {
      const token = 'confirm_token' in outcome ? outcome.confirm_token : undefined;
      const result: Out = { status: 'dry_run', ...fromPlan(outcome), restored_files_kept_in: null, ...(token ? { confirm_token: token } : {}) };
      return {
        result,
        summary: `Dry run of undoing ${outcome.snapshotId ? `the restore of ${outcome.snapshotId}` : `the last ${outcome.kind}`} (${outcome.undone_age}): it would put back ${result.put_back_from}; nothing changed. ${comparison(outcome)} What the user loses: ${outcome.what_you_lose} ${describeSafetyCopies(outcome.safety, { undo: true, root: outcome.data_root })} Show the user this plan; to proceed call data_restore_undo again with the same force and confirm_token "${token}" (it works once).`,
      };
    }
    const kept = 'pre_restore_dir' in outcome ? path.join(config.root, outcome.pre_restore_dir) : null;
    const result: Out = { status: 'undone', ...fromPlan(outcome), restored_files_kept_in: kept };
    return {
      result,
      summary: `Undone: put back ${outcome.databases.map((d) => `${d.name} (${d.target})`).join(', ')} from ${result.put_back_from}. The files it replaced (the restored state) are kept in ${kept}; restore ${outcome.snapshotId ?? 'the snapshot'} again to return to them.`,
    };
  },
});
