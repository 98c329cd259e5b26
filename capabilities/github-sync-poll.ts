import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { loadConfig } from '../src/root/config.js';
import { pollDue, syncPoll, SyncPollResultSchema } from '../src/sync/poll.js';

export default defineCapability({
  name: 'github_sync_poll',
  title: 'Check the sync remotes for changes',
  description:
    'Ask each configured sync transport (the git mirror: one git ls-remote of its branch) whether its remote changed since the last pull, and pull the ones that did (the same three-way pull as github_sync_pull: conflicts are reported, never overwritten). The sidecar runs it every sync.poll_minutes (default 15); call it to check now. Each result says how many requests the check cost, and what the pull did. The results show in github_sync_status and in health. Changes the local databases when a remote changed.',
  input: z.object({
    due_only: z.boolean().default(false).describe('ask only the transports whose next poll is due (what the sidecar does); default: all of them now'),
  }),
  output: SyncPollResultSchema,
  annotations: { title: 'Check the sync remotes for changes', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(input, ctx) {
    const result = await syncPoll(ctx.loadConfig(), { dueOnly: input.due_only, signal: ctx.signal });
    return { result, summary: result.message, isError: result.polled.some((p) => p.error !== null) };
  },
  scheduled: {
    defaults: { due_only: true },
    // The job file ticks every minute; a tick does work only when a transport's jittered interval is up.
    due(root, now) {
      try {
        return pollDue(loadConfig(root), now);
      } catch {
        return false; // a config that does not load: health reports it; nothing to poll
      }
    },
  },
});
