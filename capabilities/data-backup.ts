import { z } from 'zod';
import { BackupResultSchema, runBackup } from '../src/backup.js';
import { defineCapability } from '../src/capability.js';
import { formatBytes } from '../src/size-format.js';

export default defineCapability({
  name: 'data_backup',
  title: 'Back up the databases now',
  description:
    "Take a snapshot of every vital SQLite database now: a hot, consistent copy (writers are not blocked), archived with a manifest under the data root's backups/ folder, then the retention sweep. " +
    'Use it before any risky change to the data (pass manual: true so it lands in the manual bucket and is kept longer than hourly ones), or when the user asks for a backup. ' +
    'Returns the snapshot id, archive size and checksum, each database with its row counts, databases that were skipped and why, snapshots pruned by retention, and what happened with the remote copy. ' +
    'Changes: adds one snapshot and may delete old ones that the retention policy no longer keeps; never touches the live databases.',
  input: z.object({
    manual: z.boolean().default(false).describe('true for a user-requested anchor snapshot (kept in the manual bucket of 20); false for a routine one'),
  }),
  output: BackupResultSchema,
  annotations: { title: 'Back up the databases now', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(input, ctx) {
    const result = await runBackup(ctx.loadConfig(), {
      manual: input.manual,
      signal: ctx.signal,
      onProgress: (p) => ctx.progress(p.done, p.total, p.message),
    });
    const parts = [`Snapshot ${result.snapshot_id} saved: ${result.databases.length} database(s), ${formatBytes(result.archive.bytes)} (${result.archive.codec}).`];
    if (result.skipped.length) parts.push(`Skipped ${result.skipped.length}: ${result.skipped.map((s) => `${s.name} (${s.reason})`).join('; ')}.`);
    if (result.pruned.length) parts.push(`Retention pruned ${result.pruned.length} old snapshot(s).`);
    parts.push(`Remote: ${result.remote.status}${result.remote.reason ? ` — ${result.remote.reason}` : ''}`);
    return { result, summary: parts.join(' ') };
  },
});
