import path from 'node:path';
import { z } from 'zod';
import type { CapabilityContext } from '../src/capability/capability.js';
import { defineCapability } from '../src/capability/capability.js';
import { WbError } from '../src/core/errors.js';
import { describeSafetyCopies } from '../src/restore/safety-copies.js';
import { RestoreResultSchema, runRestore, type ConsentDecision, type RestorePlan, type RestoreResult } from '../src/restore/restore.js';
import { describeRestorePlan } from '../src/restore/plan-text.js';
import { describeComparison } from '../src/restore/compare.js';
import { askToConfirm } from '../src/capability/confirm-form.js';

const Input = z.object({
  snapshot_id: z.string().min(1).describe('a snapshot id from data_backup_list, or "latest"'),
  databases: z.array(z.string()).min(1, 'name at least one database, or leave databases out to restore every one').optional().describe('logical names to restore (at least one); leave it out for every database in the snapshot. Others are left untouched'),
  dry_run: z.boolean().default(false).describe('verify everything and return the plan and a confirm_token, changing nothing'),
  confirm_token: z
    .string()
    .max(200)
    .optional()
    .describe('the token a dry run of the same request returned, after the user saw its plan and agreed. Single use; refused when the live databases changed since the dry run'),
  force: z.boolean().default(false).describe('replace a database even when another process has it open. Does not replace consent'),
});


/** "taken 3 h 12 min ago on this machine (host)" */
function origin(result: RestoreResult): string {
  const s = result.snapshot;
  return `taken ${s.age} on ${s.this_machine ? `this machine (${s.host})` : `another machine, host ${s.host} (restoring another machine's snapshot replaces this machine's databases with it, as when moving to a new machine)`}`;
}

/** Per database: live rows now against the snapshot's, tables that change first (capped). */
function comparisonText(result: RestoreResult): string {
  const shown = result.databases.slice(0, 10).map((d) => `${d.name} (${d.target}): ${describeComparison(d.compared, 'snapshot').join('; ')}.`);
  const rest = result.databases.length - shown.length;
  return [...shown, ...(rest > 0 ? [`… and ${rest} more database(s): see databases[].compared.`] : [])].join(' ');
}

function consentFor(input: z.infer<typeof Input>, ctx: CapabilityContext): ((plan: RestorePlan) => Promise<ConsentDecision>) | 'token' {
  // The token is checked by runRestore itself, before it downloads or unpacks anything.
  if (input.confirm_token !== undefined) return 'token';
  const elicit = ctx.elicit;
  if (!elicit) {
    throw new WbError(
      'consent_required',
      'A restore replaces the live databases, so it needs the user’s consent, and this client cannot ask the user directly. Nothing was changed.',
      'Call data_restore with dry_run: true, show the user the plan (including which safety copy it would remove), and if they agree call it again with the same snapshot_id and databases plus the confirm_token the dry run returned (it works once).',
    );
  }
  return (plan) =>
    askToConfirm(elicit, describeRestorePlan(plan), {
      title: 'Replace the live databases with this snapshot',
      description: describeSafetyCopies(plan.safety, { root: plan.root }),
      operation: 'restore',
    });
}

export default defineCapability({
  name: 'data_restore',
  title: 'Restore databases from a snapshot',
  description:
    'Replace the live SQLite databases with the content of a snapshot (from data_backup_list, or "latest"). DESTRUCTIVE: the current files are moved aside to a new <root>/db.pre_restore_<time>/ safety copy (data_restore_undo puts them back); the newest restore.keep_safety_copies (default 3) are kept, and the plan names the old copy this restore would remove. ' +
    'Everything is verified first in a staging folder: archive and file checksums, manifest version, schema version (no restoring data from newer code), safe archive entries, migrations, integrity_check, foreign_key_check and row counts; any failure refuses with the reason and changes nothing. ' +
    'Consent is required: the user approves through an elicitation prompt when the client supports it; otherwise call first with dry_run: true, show the user the returned plan, and call again with the same snapshot_id, databases and force plus the returned confirm_token. ' +
    'A confirm_token works once, for 10 minutes, in this server process, and only while the live databases are exactly as the dry run saw them; after a refusal or a use, run a new dry run. A dry run changes nothing and reports states such as an unfinished write (-journal) as warnings. ' +
    'Snapshots of another machine sharing the remote (data_backup_list with host "all") can be restored too, as when moving to a new machine; "latest" is always this machine\'s newest, and the plan says plainly when the snapshot comes from another machine (snapshot.this_machine false). ' +
    "A database open in another process is refused unless force: true. Returns the snapshot's age and host, per database the target, schema versions, migrations applied, and the rows per table live now against the snapshot (compared: what the user loses, tables that change first), what_you_lose in plain words, plus where the old files went (data_root is the absolute data root). Show the user the plan before they agree; after a restore, data_restore_undo puts the previous files back.",
  input: Input,
  output: RestoreResultSchema,
  annotations: { title: 'Restore databases from a snapshot', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  async run(input, ctx) {
    const config = ctx.loadConfig();
    const consent = input.dry_run ? undefined : consentFor(input, ctx);
    const result = await runRestore(config, {
      snapshotId: input.snapshot_id,
      databases: input.databases,
      dryRun: input.dry_run,
      force: input.force,
      ...(consent === 'token' ? { confirmToken: input.confirm_token } : consent ? { consent } : {}),
      signal: ctx.signal,
      onProgress: (done, total, message) => ctx.progress(done, total, message),
    });
    const names = result.databases.map((d) => d.name).join(', ');
    const kept = path.join(result.data_root, result.pre_restore_dir ?? '');
    const summary = result.dry_run
      ? `Dry run of restoring ${names} from ${result.snapshot_id} (${origin(result)}): all checks passed, nothing changed. ${comparisonText(result)} What the user loses: ${result.what_you_lose} ${describeSafetyCopies(result.safety_copies, { root: result.data_root, newCopySaid: true })} Show the user this plan; to proceed call data_restore again with the same arguments and confirm_token "${result.confirm_token}" (it works once).`
      : `Restored ${names} from ${result.snapshot_id} (${origin(result)}). The previous files are in ${kept}; data_restore_undo puts them back.${result.pruned.length ? ` Removed the old safety cop${result.pruned.length === 1 ? 'y' : 'ies'} ${result.pruned.join(', ')}, as the plan said.` : ''}`;
    return { result, summary: result.warnings.length ? `${summary} Warnings: ${result.warnings.join(' ')}` : summary };
  },
});
