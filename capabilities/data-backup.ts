import { z } from 'zod';
import { BackupResultSchema, runBackup } from '../src/backup/pipeline.js';
import { defineCapability } from '../src/capability/capability.js';
import { formatBytes } from '../src/core/size-format.js';
import { parseSnapshotId } from '../src/snapshot/id.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';

export default defineCapability({
  name: 'data_backup',
  title: 'Back up the databases now',
  description:
    "Take a snapshot of every vital SQLite database now: a hot, consistent copy (writers are not blocked), archived with a manifest under the data root's backups/ folder, then the retention sweep. " +
    'Snapshots are incremental: unless the chain rule asks for a full one (the first, a daily full, a damaged base), a snapshot is a delta that stores only the pages changed since the newest snapshot (its base); restoring it reads its chain, and retention never deletes a base that a kept snapshot needs. ' +
    'Use it before any risky change to the data, or when the user asks for a backup: the default (manual: true) makes an anchor kept in the manual bucket, which the hourly snapshots never prune. ' +
    'Pass manual: false only for a routine snapshot that should be thinned like the hourly ones (the sidecar takes those itself). ' +
    'Returns the snapshot id, kind (full or delta), its base, full_because for a full, the archive size and checksum, each database with its row counts and how it is stored (image or delta, stored_bytes), databases that were skipped and why, snapshots pruned by retention, and what happened with the remote copy. ' +
    'Changes: adds one snapshot and may delete old ones that the retention policy no longer keeps; never touches the live databases.',
  input: z.object({
    // Default true: a snapshot someone asks for is an anchor; a routine one pruned by the next hourly
    // snapshot in the same hour would be lost exactly when it is needed. The sidecar passes false.
    manual: z.boolean().default(true).describe('true (default) for an anchor an agent or person asks for (kept in the manual bucket of 20, never pruned by hourly ones); false for a routine snapshot thinned like the hourly ones'),
    full: z.boolean().default(false).describe('true stores every database whole and starts a new chain (e.g. before handing the snapshot to another machine); default false: a delta when the newest snapshot is a sound base'),
  }),
  output: BackupResultSchema,
  annotations: { title: 'Back up the databases now', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  scheduled: {
    // Scheduled snapshots are routine (thinned hourly) unless the job file says otherwise.
    defaults: { manual: false },
    // A snapshot taken by hand also counts: catching up is about the age of the newest routine copy.
    lastDoneAt(root) {
      const newest = listLocalSnapshots(root).find((s) => !s.manual);
      return newest ? (parseSnapshotId(newest.id)?.time ?? null) : null;
    },
  },
  async run(input, ctx) {
    const result = await runBackup(ctx.loadConfig(), {
      manual: input.manual,
      full: input.full,
      signal: ctx.signal,
      onProgress: (p) => ctx.progress(p.done, p.total, p.message),
    });
    const kind = result.kind === 'delta' ? `a delta on ${result.base}` : `a full snapshot (${result.full_because ?? 'full'})`;
    const parts = [`Snapshot ${result.snapshot_id} saved, ${kind}: ${result.databases.length} database(s), ${formatBytes(result.archive.bytes)} stored (${result.archive.codec}).`];
    if (result.skipped.length) parts.push(`Skipped ${result.skipped.length}: ${result.skipped.map((s) => `${s.name} (${s.reason})`).join('; ')}.`);
    if (result.pruned.length) parts.push(`Retention pruned ${result.pruned.length} old snapshot(s).`);
    parts.push(`Remote: ${result.remote.status}${result.remote.reason ? ` — ${result.remote.reason}` : ''}`);
    return { result, summary: parts.join(' ') };
  },
});
