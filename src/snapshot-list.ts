import { z } from 'zod';
import type { Config } from './config.js';
import { listLocalSnapshots } from './snapshot-store.js';

export const SnapshotListEntrySchema = z.object({
  id: z.string(),
  manual: z.boolean(),
  created_at: z.string(),
  bytes: z.number(),
  local: z.boolean(),
  remote: z.boolean(),
});
export type SnapshotListEntry = z.infer<typeof SnapshotListEntrySchema>;

export const SnapshotListSchema = z.object({
  snapshots: z.array(SnapshotListEntrySchema).describe('newest first'),
  remote: z.object({
    configured: z.boolean(),
    listed: z.boolean(),
    reason: z.string().optional(),
  }),
});
export type SnapshotList = z.infer<typeof SnapshotListSchema>;

export type ListWhere = 'all' | 'local' | 'remote';

/** Local snapshots, merged with the remote's when one is configured (the remote half arrives with the remote backends). */
export async function listSnapshots(config: Config, where: ListWhere): Promise<SnapshotList> {
  const local = where === 'remote' ? [] : listLocalSnapshots(config.root);
  const snapshots = local.map((s) => ({ id: s.id, manual: s.manual, created_at: s.created_at, bytes: s.bytes, local: true, remote: false }));
  const remote = config.remote
    ? { configured: true, listed: false, reason: 'Listing the remote is not available in this version of wb-backup.' }
    : { configured: false, listed: false, reason: 'No remote is configured.' };
  return { snapshots, remote };
}
