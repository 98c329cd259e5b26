import fs from 'node:fs';
import { hasZstd } from '../src/snapshot/codec.js';
import { judgeFreshness } from '../src/health/freshness.js';
import { defineComponent } from '../src/health/types.js';
import { readLastRun } from '../src/backup/last-run.js';
import { rootLayout } from '../src/root/paths.js';
import { formatBytes } from '../src/core/size-format.js';
import { readLastCheck } from '../src/check/record.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';

export default defineComponent({
  id: 'local_backups',
  title: 'Local snapshots',
  description: 'Hot snapshots of the vital databases under the data root, kept by the retention policy.',
  optIn: false,
  wanted: () => true,
  requirements: [
    {
      id: 'data-root-writable',
      title: 'Data root is writable',
      async check(ctx) {
        const { backupsDir } = rootLayout(ctx.root);
        try {
          fs.mkdirSync(backupsDir, { recursive: true });
          fs.accessSync(backupsDir, fs.constants.W_OK);
          const free = fs.statfsSync(backupsDir);
          const bytes = free.bavail * free.bsize;
          return bytes < 1024 ** 3 ? { status: 'warn', detail: `only ${formatBytes(bytes)} free for snapshots` } : { status: 'ok', detail: `${formatBytes(bytes)} free` };
        } catch (err) {
          return { status: 'fail', detail: `snapshots cannot be written: ${(err as Error).message}` };
        }
      },
    },
    {
      id: 'databases-found',
      title: 'Vital databases found',
      dependsOn: ['data-root-writable'],
      async check(ctx) {
        const dbs = ctx.config.databases;
        if (!dbs.length) return { status: 'fail', detail: `no databases configured and no *.db under ${rootLayout(ctx.config.root).dbDir}: list them under databases: in ${rootLayout(ctx.config.root).configYaml}` };
        const missing = dbs.filter((d) => !fs.existsSync(d.path)).map((d) => d.name);
        if (missing.length === dbs.length) return { status: 'fail', detail: `none of the configured databases exists (${missing.join(', ')})` };
        if (missing.length) return { status: 'warn', detail: `${dbs.length - missing.length} of ${dbs.length} found; missing: ${missing.join(', ')}` };
        return { status: 'ok', detail: `${dbs.length} database(s): ${dbs.map((d) => d.name).join(', ')}` };
      },
    },
    {
      id: 'fast-compression',
      title: 'zstd available for fast compression',
      async check(ctx) {
        if (ctx.config.compression.codec === 'gzip') return { status: 'ok', detail: 'gzip chosen in the configuration' };
        return hasZstd() ? { status: 'ok', detail: 'zstd found: multi-threaded compression' } : { status: 'warn', detail: 'zstd not found: snapshots use gzip (slower, larger). Install the zstd package.' };
      },
    },
  ],
  checks: [
    {
      id: 'backup-freshness',
      title: 'Recent snapshot',
      async check(ctx) {
        return judgeFreshness(readLastRun(ctx.root), ctx.now(), ctx.config.backup.cadence_minutes, 'local');
      },
    },
    {
      id: 'copies-proven',
      title: 'Copies proven restorable',
      async check(ctx) {
        const last = readLastCheck(ctx.root);
        const period = ctx.config.backup.check_period_days;
        const day = 24 * 3600 * 1000;
        if (!last) {
          // Unproven is worth a warning only once there has been time for the daily check to run.
          const oldest = listLocalSnapshots(ctx.root).at(-1);
          const waiting = !oldest || ctx.now().getTime() - Date.parse(oldest.created_at) < 2 * day;
          return waiting
            ? { status: 'ok', detail: 'not proven yet: the daily check (data_backup_check) rebuilds a sample of the snapshots; run `wb-backup check --read-data` to prove them now' }
            : { status: 'warn', detail: 'no check has ever proven a snapshot restorable: run `wb-backup check --read-data` (or let the daily check job run)' };
        }
        const ago = Math.round((ctx.now().getTime() - Date.parse(last.finished_at)) / 3600_000);
        const when = `${last.where} copies, checked ${ago} h ago: ${last.checked} checked, ${last.read} rebuilt`;
        if (!last.ok) return { status: 'fail', detail: `${when}; ${last.failed.length} failed: ${last.failed.slice(0, 3).map((f) => `${f.id} (${f.problems[0] ?? 'failed'})`).join('; ')}` };
        if (ctx.now().getTime() - Date.parse(last.finished_at) > (period + 1) * day) return { status: 'warn', detail: `${when}; that is older than backup.check_period_days (${period}): is the sidecar running?` };
        return { status: 'ok', detail: when };
      },
    },
  ],
});
