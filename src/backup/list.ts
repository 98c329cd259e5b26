import { z } from 'zod';
import type { Config } from '../root/config.js';
import { describeError } from '../core/errors.js';
import { remoteFromConfig } from '../remote/registry.js';
import type { Remote } from '../remote/remote.js';
import { compareSnapshotIds, parseSnapshotId } from '../snapshot/id.js';
import { listLocalSnapshots } from '../snapshot/store.js';

export const SnapshotListEntrySchema = z.object({
  id: z.string(),
  manual: z.boolean(),
  created_at: z.string(),
  bytes: z.number(),
  local: z.boolean(),
  remote: z.boolean().describe('a complete copy is on the remote'),
});
export type SnapshotListEntry = z.infer<typeof SnapshotListEntrySchema>;

export const SnapshotListSchema = z.object({
  snapshots: z.array(SnapshotListEntrySchema).describe('newest first'),
  remote: z.object({
    configured: z.boolean(),
    label: z.string().optional(),
    listed: z.boolean(),
    reason: z.string().optional(),
  }),
});
export type SnapshotList = z.infer<typeof SnapshotListSchema>;

export type ListWhere = 'all' | 'local' | 'remote';

/** Local and remote snapshots merged by id (the remote is asked unless where = local). */
export async function listSnapshots(config: Config, where: ListWhere, remote: Remote | null = remoteFromConfig(config)): Promise<SnapshotList> {
  const merged = new Map<string, SnapshotListEntry>();
  if (where !== 'remote') {
    for (const s of listLocalSnapshots(config.root)) {
      merged.set(s.id, { id: s.id, manual: s.manual, created_at: s.created_at, bytes: s.bytes, local: true, remote: false });
    }
  }
  let remoteInfo: SnapshotList['remote'] = { configured: false, listed: false, reason: 'No remote is configured.' };
  if (remote) {
    remoteInfo = { configured: true, label: remote.label, listed: false };
    if (where !== 'local') {
      try {
        for (const r of await remote.list()) {
          if (!r.complete) continue; // a half-done push is not a copy anyone can restore
          const known = merged.get(r.id);
          const parsed = parseSnapshotId(r.id);
          if (known) known.remote = true;
          else if (parsed) merged.set(r.id, { id: r.id, manual: parsed.manual, created_at: parsed.time.toISOString(), bytes: r.bytes, local: false, remote: true });
        }
        remoteInfo.listed = true;
      } catch (err) {
        remoteInfo.reason = `The remote could not be listed: ${describeError(err)}`;
      }
    }
  }
  const snapshots = [...merged.values()].sort((a, b) => compareSnapshotIds(b.id, a.id));
  return { snapshots, remote: remoteInfo };
}
