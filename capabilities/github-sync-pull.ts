import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { IssuesPullResultSchema } from '../src/sync/issues/pull.js';
import { joinedMessage, runChosen, TRANSPORT_CHOICES } from '../src/sync/issues/surfaces.js';
import { issuesTransport } from '../src/sync/issues/transport.js';
import { SyncPullResultSchema, syncPull } from '../src/sync/pull.js';

export default defineCapability({
  name: 'github_sync_pull',
  title: 'Pull edits made on the data mirror',
  description:
    'Bring row edits made in the sync repository (e.g. on GitHub) into the local databases. Per row, three-way against the last sync: changes made only on the remote are applied (one transaction per database); rows changed on both sides are reported as conflicts with both versions and left untouched on both sides (resolve them row by row with github_sync_resolve); a remote file that does not parse is reported with its path and line and nothing from that table is applied. ' +
    'With sync.issues configured, edits people made to the managed GitHub issues (title, body, labels, open/closed, new comments) come back into the task rows the same way (result under issues, with its own conflicts). ' +
    'Schema changes are not pulled. Use dry_run to preview. Changes the local databases.',
  input: z.object({
    dry_run: z.boolean().default(false),
    transport: z.enum(TRANSPORT_CHOICES).default('all').describe('all: every configured transport; git: the mirror only; issues: the GitHub Issues transport only'),
  }),
  output: SyncPullResultSchema.partial().extend({ message: z.string(), issues: IssuesPullResultSchema.optional().describe('the GitHub Issues transport (sync.issues), when it ran') }),
  annotations: { title: 'Pull edits made on the data mirror', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(input, ctx) {
    const config = ctx.loadConfig();
    const ran = await runChosen(
      config,
      input.transport,
      () => syncPull(config, { dryRun: input.dry_run, onProgress: ctx.progress }),
      () => issuesTransport(config).pull({ dryRun: input.dry_run }),
    );
    const result = { ...(ran.git ?? {}), message: joinedMessage(ran.git, ran.issues), ...(ran.issues ? { issues: ran.issues } : {}) };
    return { result, summary: result.message };
  },
});
