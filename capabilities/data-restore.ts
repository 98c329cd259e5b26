import { z } from 'zod';
import type { CapabilityContext } from '../src/capability.js';
import { defineCapability } from '../src/capability.js';
import { WbError } from '../src/errors.js';
import { checkConfirmToken } from '../src/restore/consent.js';
import { RestoreResultSchema, runRestore, type ConsentDecision, type RestorePlan } from '../src/restore/restore.js';

const Input = z.object({
  snapshot_id: z.string().min(1).describe('a snapshot id from data_backup_list, or "latest"'),
  databases: z.array(z.string()).optional().describe('logical names to restore; default: every database in the snapshot. Others are left untouched'),
  dry_run: z.boolean().default(false).describe('verify everything and return the plan and a confirm_token, changing nothing'),
  confirm_token: z.string().optional().describe('the token a dry run of the same request returned: the user saw the plan and agreed'),
  force: z.boolean().default(false).describe('replace a database even when another process has it open. Does not replace consent'),
});

function describePlan(plan: RestorePlan): string {
  const lines = plan.databases.map((d) => {
    const rows = Object.values(d.rows).reduce((a, b) => a + b, 0);
    const mig = d.migrations_applied.length ? `, then migrations ${d.migrations_applied.join(', ')}` : '';
    return `- ${d.name} -> ${d.target} (${rows} rows, schema ${d.from_user_version}${mig})${d.live_exists ? '' : ' [no live file yet]'}`;
  });
  return [`Restore snapshot ${plan.snapshotId}? This replaces:`, ...lines, `The current files move to ${plan.preRestoreDir} (wb-backup restore --undo puts them back).`, ...plan.warnings.map((w) => `Warning: ${w}`)].join('\n');
}

function consentFor(input: z.infer<typeof Input>, ctx: CapabilityContext, root: string): (plan: RestorePlan) => Promise<ConsentDecision> {
  if (input.confirm_token) {
    const token = input.confirm_token;
    return async (plan) => {
      const check = checkConfirmToken(token, { root, snapshotId: plan.snapshotId, databases: plan.databases.map((d) => d.name) });
      return check.ok ? { granted: true } : { granted: false, reason: `${check.reason}; run a new dry run and use its confirm_token` };
    };
  }
  const elicit = ctx.elicit;
  if (!elicit) {
    throw new WbError(
      'consent_required',
      'A restore replaces the live databases, so it needs the user’s consent, and this client cannot ask the user directly. Nothing was changed.',
      'Call data_restore with dry_run: true, show the user the plan, and if they agree call it again with the same snapshot_id and databases plus the confirm_token the dry run returned.',
    );
  }
  return async (plan) => {
    const answer = await elicit(describePlan(plan), {
      type: 'object',
      properties: { confirm: { type: 'boolean', title: 'Replace the live databases with this snapshot', description: 'The current files are kept in a pre_restore folder.' } },
      required: ['confirm'],
    });
    if (answer.action !== 'accept') return { granted: false, reason: `the user ${answer.action === 'decline' ? 'declined' : 'cancelled'} the restore` };
    return answer.content.confirm === true ? { granted: true } : { granted: false, reason: 'the user did not confirm' };
  };
}

export default defineCapability({
  name: 'data_restore',
  title: 'Restore databases from a snapshot',
  description:
    'Replace the live SQLite databases with the content of a snapshot (from data_backup_list, or "latest"). DESTRUCTIVE: the current files are moved aside to <root>/db.pre_restore_<time>/ (the 3 newest are kept; `wb-backup restore --undo` puts them back). ' +
    'Everything is verified first in a staging folder: archive and file checksums, manifest version, schema version (no restoring data from newer code), safe archive entries, migrations, integrity_check, foreign_key_check and row counts; any failure refuses with the reason and changes nothing. ' +
    'Consent is required: the user approves through an elicitation prompt when the client supports it; otherwise call first with dry_run: true, show the user the returned plan, and call again with the same snapshot_id and databases plus the returned confirm_token (valid 10 minutes). ' +
    'A database open in another process is refused unless force: true. Returns per database the target, schema versions, migrations applied and row counts, plus where the old files went.',
  input: Input,
  output: RestoreResultSchema,
  annotations: { title: 'Restore databases from a snapshot', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  async run(input, ctx) {
    const config = ctx.loadConfig();
    const consent = input.dry_run ? undefined : consentFor(input, ctx, config.root);
    const result = await runRestore(config, {
      snapshotId: input.snapshot_id,
      databases: input.databases,
      dryRun: input.dry_run,
      force: input.force,
      ...(consent ? { consent } : {}),
      signal: ctx.signal,
      onProgress: (done, total, message) => ctx.progress(done, total, message),
    });
    const names = result.databases.map((d) => d.name).join(', ');
    const summary = result.dry_run
      ? `Dry run of restoring ${names} from ${result.snapshot_id}: all checks passed, nothing changed. Show the user the plan; to proceed call data_restore again with confirm_token "${result.confirm_token}".`
      : `Restored ${names} from ${result.snapshot_id}. The previous files are in ${result.pre_restore_dir}.`;
    return { result, summary: result.warnings.length ? `${summary} Warnings: ${result.warnings.join(' ')}` : summary };
  },
});
