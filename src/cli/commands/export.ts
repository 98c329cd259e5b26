import type { Command } from 'commander';
import { loadConfig } from '../../root/config.js';
import { shutdownSignal, track } from '../../core/shutdown.js';
import { formatBytes } from '../../core/size-format.js';
import { exportDatabase } from '../../restore/export.js';
import { rootOf } from '../root.js';
import { out } from '../output.js';

/**
 * `wb-backup export <id> --db <name> --out <file.db>`: one database of a snapshot (full or delta)
 * rebuilt into a new file and verified; no live file is touched (src/restore/export.ts).
 */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('rebuild one database of a snapshot (full or delta) into a new file, verified; live data is not touched')
    .argument('<snapshot-id>', 'a snapshot id from `wb-backup list`, or "latest"')
    .requiredOption('--db <name>', 'the database to rebuild')
    .requiredOption('--out <file>', 'the file to create (refused when it exists)')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: { db: string; out: string; json?: boolean }, cmd: Command) => {
      const result = await track(exportDatabase(loadConfig(rootOf(cmd)), { snapshotId: id, db: opts.db, out: opts.out, signal: shutdownSignal }));
      if (opts.json) return out(JSON.stringify(result, null, 2));
      const from = result.stored === 'delta' ? `rebuilt from ${result.chain.length} snapshots (${result.chain.join(' <- ')})` : 'stored whole';
      out(`exported ${result.db} of ${result.snapshot_id} to ${result.out}: ${formatBytes(result.bytes)}, ${from}; sha256 ${result.sha256} and integrity_check verified`);
    });
}
