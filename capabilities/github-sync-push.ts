import { z } from 'zod';
import { defineCapability } from '../src/capability.js';
import { SyncPushResultSchema, syncPush } from '../src/sync/push.js';

export default defineCapability({
  name: 'github_sync_push',
  title: 'Push the readable data mirror',
  description:
    'Mirror the databases as readable files (<db>/schema.sql and one JSON line per row, sorted by primary key) into the git repository configured under sync.github, as ONE commit with every change (deleted rows and dropped tables included), pushed fast-forward only. ' +
    'If the remote branch changed since the last sync, nothing is overwritten: the result has status remote_changed and the changed paths. A sync with nothing new makes no commit. ' +
    'Use dry_run to see which files would change. Returns the status, branch, commit, changed files and rows mirrored per table. Changes the remote repository (not the local databases).',
  input: z.object({ dry_run: z.boolean().default(false).describe('list what would change; commit and push nothing') }),
  output: SyncPushResultSchema,
  annotations: { title: 'Push the readable data mirror', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(input, ctx) {
    const result = await syncPush(ctx.loadConfig(), { dryRun: input.dry_run });
    return { result, summary: result.message };
  },
});
