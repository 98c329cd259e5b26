import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { SyncPullResultSchema, syncPull } from '../src/sync/pull.js';

export default defineCapability({
  name: 'github_sync_pull',
  title: 'Pull edits made on the data mirror',
  description:
    'Bring row edits made in the sync repository (e.g. on GitHub) into the local databases. Per row, three-way against the last sync: changes made only on the remote are applied (one transaction per database); rows changed on both sides are reported as conflicts with both versions and left untouched on both sides (resolve them row by row with github_sync_resolve); a remote file that does not parse is reported with its path and line and nothing from that table is applied. ' +
    'Schema changes are not pulled. Use dry_run to preview. Changes the local databases.',
  input: z.object({ dry_run: z.boolean().default(false) }),
  output: SyncPullResultSchema,
  annotations: { title: 'Pull edits made on the data mirror', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(input, ctx) {
    const result = await syncPull(ctx.loadConfig(), { dryRun: input.dry_run });
    return { result, summary: result.message };
  },
});
