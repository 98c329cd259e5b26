import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { joinedMessage } from '../src/sync/issues/surfaces.js';
import { issuesStatus, IssuesStatusSchema } from '../src/sync/issues/transport.js';
import { describeLastPolls, transportPolls, TransportPollsSchema } from '../src/sync/poll.js';
import { SyncStatusSchema, syncStatus } from '../src/sync/status.js';

export default defineCapability({
  name: 'github_sync_status',
  title: 'Data mirror status',
  description:
    'How far the databases and the sync repository have moved since the last github-sync: commits on the remote since then, and per table file the rows changed here and on the remote; and each configured sync transport with what its last poll found (the sidecar checks every sync.poll_minutes). With sync.issues configured, also the GitHub Issues transport (under issues): issues tracked, what the next push would send, conflicts left by the last pull. Use it before github_sync_push or github_sync_pull. Read-only (it fetches from the remote).',
  input: z.object({}),
  output: SyncStatusSchema.extend({ transports: TransportPollsSchema, issues: IssuesStatusSchema.optional().describe('the GitHub Issues transport (sync.issues), when configured') }),
  annotations: { title: 'Data mirror status', readOnlyHint: true, openWorldHint: true },
  async run(_input, ctx) {
    const config = ctx.loadConfig();
    const status = await syncStatus(config);
    const transports = transportPolls(config);
    const polls = describeLastPolls(transports, new Date());
    const issues = config.sync?.issues ? issuesStatus(config) : undefined;
    const message = issues ? joinedMessage(status.configured ? status : undefined, issues) : status.message;
    return { result: { ...status, transports, ...(issues ? { issues, message } : {}) }, summary: polls ? `${message} ${polls}` : message };
  },
});
