import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { SYNC_MODES } from '../src/sync/config.js';
import { IssuesPushResultSchema } from '../src/sync/issues/push.js';
import { joinedMessage, runChosen, TRANSPORT_CHOICES } from '../src/sync/issues/surfaces.js';
import { issuesTransport } from '../src/sync/issues/transport.js';
import { SyncPushResultSchema, syncPush } from '../src/sync/push.js';

export default defineCapability({
  name: 'github_sync_push',
  title: 'Push the readable data mirror',
  description:
    'Mirror the databases as readable files (<db>/schema.sql and one JSON line per row, sorted by primary key) into the git repository configured under sync.github, as ONE commit with every change (deleted rows and dropped tables included). Never force-pushes. ' +
    'Modes: direct pushes to the branch and, if the remote changed since the last sync, overwrites nothing and returns an error result with status remote_changed and the changed paths (then call github_sync_pull first); ' +
    'pr always pushes a wb-backup/sync-* branch and opens (or updates) a pull request; hybrid pushes directly when that is a fast-forward and opens a pull request otherwise. status pull_request carries its URL. ' +
    'A sync with nothing new makes no commit. Tables whose changes would take the push over sync.github.max_push_bytes wait for a later sync (listed in skipped with the reason). ' +
    'With sync.issues configured, task tables are also kept as GitHub issues (result under issues): only rows changed since the last sync are sent, deleted rows close their issue, issues changed on GitHub since the last sync are left alone (pull first). ' +
    'Use dry_run to see which files would change. Changes the remote repository (not the local databases).',
  input: z.object({
    dry_run: z.boolean().default(false).describe('list what would change; commit and push nothing'),
    mode: z.enum(SYNC_MODES).optional().describe('override sync.github.mode for this push'),
    transport: z.enum(TRANSPORT_CHOICES).default('all').describe('all: every configured transport; git: the mirror only; issues: the GitHub Issues transport only'),
  }),
  output: SyncPushResultSchema.partial().extend({ message: z.string(), issues: IssuesPushResultSchema.optional().describe('the GitHub Issues transport (sync.issues), when it ran') }),
  annotations: { title: 'Push the readable data mirror', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(input, ctx) {
    const config = ctx.loadConfig();
    const ran = await runChosen(
      config,
      input.transport,
      () => syncPush(config, { dryRun: input.dry_run, ...(input.mode ? { mode: input.mode } : {}), onProgress: ctx.progress }),
      () => issuesTransport(config).push({ dryRun: input.dry_run }),
    );
    const result = { ...(ran.git ?? {}), message: joinedMessage(ran.git, ran.issues), ...(ran.issues ? { issues: ran.issues } : {}) };
    // remote_changed pushed nothing: the push the agent asked for did not happen.
    return { result, summary: result.message, isError: ran.git?.status === 'remote_changed' };
  },
});
