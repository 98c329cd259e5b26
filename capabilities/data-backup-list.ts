import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { SnapshotListSchema, listSnapshots } from '../src/backup/list.js';
import { formatBytes } from '../src/core/size-format.js';

export default defineCapability({
  name: 'data_backup_list',
  title: 'List backup snapshots',
  description:
    'List the backup snapshots, newest first, with id, whether it was manual, creation time (UTC), archive size, and whether a copy exists locally and on the remote. ' +
    'Use it to answer "when was the last backup?", or to pick a snapshot id for data_restore. Read-only.',
  input: z.object({
    where: z.enum(['all', 'local', 'remote']).default('all').describe('all (default) merges local and remote; local or remote limits the listing'),
  }),
  output: SnapshotListSchema,
  annotations: { title: 'List backup snapshots', readOnlyHint: true, openWorldHint: false },
  async run(input, ctx) {
    const result = await listSnapshots(ctx.loadConfig(), input.where);
    const newest = result.snapshots[0];
    const summary = newest
      ? `${result.snapshots.length} snapshot(s); newest ${newest.id} (${formatBytes(newest.bytes)}).`
      : 'No snapshots yet. Take one with data_backup.';
    return { result, summary: result.remote.reason && input.where !== 'local' ? `${summary} ${result.remote.reason}` : summary };
  },
});
