/**
 * What the sidecar's polls found, per transport, in <root>/sync/poll.json beside the sync state:
 * when each transport was last asked, whether its remote had changed, what that cost, the pull it
 * triggered (or the failure), and when the next poll is due. Health and github_sync_status read it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../core/durable-file.js';
import { syncDir } from './state.js';

export const PollRecordSchema = z.object({
  label: z.string().describe('the transport, e.g. "git:owner/name"'),
  at: z.string().describe('when the poll ran (ISO 8601)'),
  changed: z.boolean().nullable().describe('the remote had changed since the last pull; null when the poll failed'),
  requests: z.number().int().nonnegative().describe('network requests the poll made (0 when it failed: the transport could not say)'),
  detail: z.string(),
  pulled: z
    .object({
      status: z.string(),
      conflicts: z.number().int().nonnegative(),
      rejected: z.number().int().nonnegative(),
      message: z.string(),
    })
    .nullable()
    .describe('the pull this poll triggered (only when the remote changed)'),
  error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }).nullable().describe('why the poll or its pull failed'),
  next_at: z.string().describe('when the sidecar polls this transport next (ISO 8601; jittered)'),
});
export type PollRecord = z.infer<typeof PollRecordSchema>;

export const PollStateSchema = z.object({ transports: z.record(z.string(), PollRecordSchema) });
export type PollState = z.infer<typeof PollStateSchema>;

function pollFile(root: string): string {
  return path.join(syncDir(root), 'poll.json');
}

/** The poll records; empty when none was written (or the file cannot be read: the next poll rewrites it). */
export function readPollState(root: string): PollState {
  try {
    const parsed = PollStateSchema.safeParse(JSON.parse(fs.readFileSync(pollFile(root), 'utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    /* missing or torn: no records */
  }
  return { transports: {} };
}

/** Replace one transport's record (others kept), atomically. */
export function writePollRecord(root: string, id: string, record: PollRecord): void {
  const state = readPollState(root);
  state.transports[id] = record;
  fs.mkdirSync(syncDir(root), { recursive: true });
  writeFileAtomic(pollFile(root), `${JSON.stringify(state, null, 2)}\n`);
}
