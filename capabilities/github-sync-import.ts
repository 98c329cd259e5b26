import { z } from 'zod';
import type { CapabilityContext } from '../src/capability/capability.js';
import { defineCapability } from '../src/capability/capability.js';
import type { ConsentDecision } from '../src/restore/restore.js';
import { describeSafetyCopies } from '../src/restore/safety-copies.js';
import { SyncImportResultSchema, syncImport, type ImportPlan } from '../src/sync/import.js';
import { askToConfirm } from '../src/capability/confirm-form.js';

const Input = z.object({
  clone_dir: z.string().min(1).describe('folder of a git clone of the sync repository'),
  dry_run: z.boolean().default(false).describe('show what would be rebuilt and replaced, changing nothing; returns a confirm_token when existing databases would be replaced'),
  confirm_token: z.string().max(200).optional().describe('the token a dry run with the same clone_dir returned, after the user saw its plan and agreed. Single use'),
  force: z.boolean().default(false).describe('kept for older clients; it does NOT replace consent: replacing existing databases always needs a confirm_token or the user’s answer'),
});

function describeImport(plan: ImportPlan): string {
  const lines = plan.databases.map((d) => `- ${d.name} -> ${d.target}${d.replaced ? ' (REPLACES the existing database)' : ' (new)'}`);
  return ['Rebuild these databases from the mirror clone?', ...lines, describeSafetyCopies(plan.safety), ...plan.warnings.map((w) => `Warning: ${w}`)].join('\n');
}

/** Elicitation when the client can ask the user; undefined otherwise (syncImport then refuses with what to do). */
function elicitConsent(ctx: CapabilityContext): ((plan: ImportPlan) => Promise<ConsentDecision>) | undefined {
  const elicit = ctx.elicit;
  if (!elicit) return undefined;
  return (plan) =>
    askToConfirm(elicit, describeImport(plan), {
      title: 'Replace the existing databases with the mirror',
      description: describeSafetyCopies(plan.safety),
      operation: 'import',
    });
}

export default defineCapability({
  name: 'github_sync_import',
  title: 'Rebuild databases from a mirror clone',
  description:
    'Rebuild the databases from a `git clone` of the sync repository (schema.sql + rows), e.g. on a new or wiped machine. Each database is built in a temp file and its row counts checked against the mirror manifest before it is moved into place. A malformed row file is refused with its path and line. ' +
    'Into an empty data root it needs no consent. Replacing EXISTING databases is DESTRUCTIVE and needs the user’s consent: through an elicitation prompt when the client supports it; otherwise call first with dry_run: true, show the user the returned plan (which databases are replaced, how many safety copies are kept and which old one would be removed), and call again with the same clone_dir plus the returned confirm_token. ' +
    'A confirm_token works once, for 10 minutes, and only while the live databases are as the dry run saw them. `force` alone never replaces anything. The replaced files are kept in a safety copy that no later operation overwrites.',
  input: Input,
  output: SyncImportResultSchema,
  annotations: { title: 'Rebuild databases from a mirror clone', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  async run(input, ctx) {
    const config = ctx.loadConfig();
    const consent = input.dry_run || input.confirm_token !== undefined ? undefined : elicitConsent(ctx);
    const result = await syncImport(config, input.clone_dir, {
      dryRun: input.dry_run,
      force: input.force,
      ...(input.confirm_token !== undefined ? { confirmToken: input.confirm_token } : {}),
      ...(consent ? { consent } : {}),
      onProgress: ctx.progress,
    });
    const summary = result.confirm_token
      ? `${result.message} Show the user the plan; to proceed call github_sync_import again with the same clone_dir and confirm_token "${result.confirm_token}" (it works once).`
      : result.message;
    return { result, summary };
  },
});
