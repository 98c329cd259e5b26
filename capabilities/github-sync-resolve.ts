import { z } from 'zod';
import type { CapabilityContext } from '../src/capability/capability.js';
import { defineCapability } from '../src/capability/capability.js';
import { rootLayout } from '../src/root/paths.js';
import type { ConsentDecision } from '../src/restore/restore.js';
import { ResolutionSchema, SyncResolveResultSchema, resolveConflicts, type PlannedResolution } from '../src/sync/resolve.js';
import { askToConfirm } from '../src/capability/confirm-form.js';

const Input = z.object({
  resolutions: z
    .array(ResolutionSchema)
    .max(500)
    .optional()
    .describe('one entry per conflict to resolve: {database, table, key, take}. Leave out (or empty) to list the open conflicts'),
  dry_run: z.boolean().default(false).describe('show what each resolution would write, changing nothing; returns a confirm_token'),
  confirm_token: z.string().max(200).optional().describe('the token a dry run with the same resolutions returned, after the user saw its plan and agreed. Single use'),
});

function describePlan(plan: readonly PlannedResolution[], root: string): string {
  const lines = plan.map((p) => {
    const what =
      p.action === 'keep_ours'
        ? 'keep the local row (the next push overwrites the remote version)'
        : p.action === 'delete'
          ? 'DELETE the local row (the remote deleted it)'
          : `${p.action === 'insert' ? 'insert' : 'REPLACE the local row with'} the remote row: ${p.write?.line ?? ''}`;
    return `- ${p.database}.${p.table} ${p.key}: ${what}`;
  });
  return ['Resolve these github-sync conflicts?', ...lines, `A safety copy of each database written is kept under ${rootLayout(root).syncResolvedDir}.`].join('\n');
}

function elicitConsent(ctx: CapabilityContext): ((plan: readonly PlannedResolution[]) => Promise<ConsentDecision>) | undefined {
  const elicit = ctx.elicit;
  if (!elicit) return undefined;
  return (plan) =>
    askToConfirm(elicit, describePlan(plan, ctx.root), {
      title: 'Resolve the conflicts as shown',
      description: 'Rows taken from the remote replace the local rows; rows kept here replace the remote ones at the next push.',
      operation: 'resolution',
    });
}

export default defineCapability({
  name: 'github_sync_resolve',
  title: 'Resolve data mirror conflicts row by row',
  description:
    'Resolve the rows github_sync_pull reported as conflicts (changed both here and on the remote since the last sync), one row at a time. Use it after a pull returns status "conflicts". ' +
    'Without resolutions it lists the open conflicts (counts per table first, then each with database, table, key and the base/ours/theirs rows, long rows cut) and changes nothing. ' +
    "With resolutions [{database, table, key, take}]: take 'theirs' writes the remote's row into the local database (inserting or updating it, or deleting it when the remote deleted it; one transaction per database, foreign keys checked as pull does, triggers fire); take 'ours' keeps the local row, which the next github_sync_push sends to the remote. " +
    'This is DESTRUCTIVE (it replaces local rows, or the remote version at the next push) and needs the user’s consent: through an elicitation prompt when the client supports it; otherwise call first with dry_run: true, show the user the returned plan (per row the action and the row written), and call again with the same resolutions plus the returned confirm_token (works once, 10 minutes, only while the databases are unchanged). ' +
    'Before writing, each database written is copied to <root>/sync/resolved/<time>/ (listed in safety_copies). A row changed again since the pull is refused: run github_sync_pull again. ' +
    'When the last conflict is resolved, base_advanced is true: call github_sync_push next (it sends the rows kept as ours; a pull has nothing to do). Otherwise resolve the rest.',
  input: Input,
  output: SyncResolveResultSchema,
  annotations: { title: 'Resolve data mirror conflicts row by row', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  async run(input, ctx) {
    const config = ctx.loadConfig();
    const resolutions = input.resolutions ?? [];
    const consent = input.dry_run || input.confirm_token !== undefined || !resolutions.length ? undefined : elicitConsent(ctx);
    const result = await resolveConflicts(config, {
      resolutions,
      dryRun: input.dry_run,
      ...(input.confirm_token !== undefined ? { confirmToken: input.confirm_token } : {}),
      ...(consent ? { consent } : {}),
    });
    const summary = result.confirm_token
      ? `${result.message} Show the user the plan; to proceed call github_sync_resolve again with the same resolutions and confirm_token "${result.confirm_token}".`
      : result.message;
    return { result, summary };
  },
});
