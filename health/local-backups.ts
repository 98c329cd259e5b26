import fs from 'node:fs';
import { hasZstd } from '../src/snapshot/codec.js';
import { judgeFreshness } from '../src/health/freshness.js';
import { defineComponent } from '../src/health/types.js';
import { readLastRun } from '../src/backup/last-run.js';
import { rootLayout } from '../src/root/paths.js';
import { formatBytes } from '../src/core/size-format.js';

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
  ],
});
