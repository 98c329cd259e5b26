// wb-backup diff of two snapshots vs. a full restore of the newer one, same data, same run: time
// and peak RSS. Usage: npm run bench:diff -- [--mb 600] [--keep]
// The diff is measured cold (both snapshots rebuilt into the cache: the first call) and warm
// (the cache reused: every later call on the same snapshots).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { generateSet } from './generate.js';
import { arg, mb, measure } from './lib.js';

const CLI = path.resolve('dist/src/cli/main.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-diff-'));
const root = path.join(work, 'root');
const env = { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' };

async function now(): Promise<{ snapshot_id: string; databases: Array<{ bytes: number; stored?: string }> }> {
  const m = await measure(process.execPath, [CLI, '--root', root, 'now', '--json'], { env });
  if (m.code !== 0) throw new Error(`wb-backup now failed: ${m.stderr}`);
  return JSON.parse(m.stdout) as { snapshot_id: string; databases: Array<{ bytes: number; stored?: string }> };
}

/** A mistaken wide DELETE and some ordinary edits between the two snapshots. */
function damage(dbDir: string): void {
  const tasks = new Database(path.join(dbDir, 'tasks.db'));
  tasks.exec(`DELETE FROM task_history WHERE task_id IN (SELECT id FROM tasks WHERE project_id = 3);
    DELETE FROM tasks WHERE project_id = 3;
    UPDATE tasks SET state = 'done' WHERE id % 97 = 0;`);
  tasks.close();
  const messages = new Database(path.join(dbDir, 'messages.db'));
  messages.exec("UPDATE messages SET body = body || ' (edited)' WHERE id % 1000 = 0;");
  messages.close();
}

const settle = async () => {
  await measure('sync', []);
  await new Promise((r) => setTimeout(r, 3000));
};

async function main(): Promise<void> {
  const totalMb = Number(arg('mb', '600'));
  generateSet(path.join(root, 'db'), totalMb);
  const a = await now();
  damage(path.join(root, 'db'));
  const b = await now();
  const dataBytes = b.databases.reduce((n, d) => n + d.bytes, 0);
  console.log(`data: ${b.databases.length} databases, ${mb(dataBytes)}; ${a.snapshot_id} -> ${b.snapshot_id} (${b.databases.filter((d) => d.stored === 'delta').length} stored as deltas)`);

  await settle();
  const restore = await measure(process.execPath, [CLI, '--root', root, 'restore', b.snapshot_id, '--yes', '--json'], { env });
  if (restore.code !== 0) throw new Error(`wb-backup restore failed: ${restore.stderr}`);
  await settle();
  const cold = await measure(process.execPath, [CLI, '--root', root, 'diff', a.snapshot_id, b.snapshot_id, '--json'], { env });
  if (cold.code !== 0) throw new Error(`wb-backup diff failed: ${cold.stderr}`);
  await settle();
  const warm = await measure(process.execPath, [CLI, '--root', root, 'diff', a.snapshot_id, b.snapshot_id, '--json'], { env });
  if (warm.code !== 0) throw new Error(`wb-backup diff failed: ${warm.stderr}`);
  const result = JSON.parse(warm.stdout) as { totals: Record<string, number> };
  console.log(`diff found: ${JSON.stringify(result.totals)}`);

  const secs = (ms: number) => `${(ms / 1000).toFixed(2).padStart(7)} s`;
  console.log(`${'wb-backup restore <newer> --yes'.padEnd(52)} ${secs(restore.ms)}  peak RSS ${restore.peakMb.toFixed(0)} MiB`);
  console.log(`${'wb-backup diff <older> <newer> (cold: both rebuilt)'.padEnd(52)} ${secs(cold.ms)}  peak RSS ${cold.peakMb.toFixed(0)} MiB`);
  console.log(`${'wb-backup diff <older> <newer> (warm: cache reused)'.padEnd(52)} ${secs(warm.ms)}  peak RSS ${warm.peakMb.toFixed(0)} MiB`);
  const verdict = (ok: boolean) => (ok ? 'MET' : 'MISSED');
  console.log(`diff time < restore time: cold ${verdict(cold.ms < restore.ms)} (${(cold.ms / restore.ms).toFixed(2)}x), warm ${verdict(warm.ms < restore.ms)} (${(warm.ms / restore.ms).toFixed(2)}x)`);
  const peak = Math.max(cold.peakMb, warm.peakMb);
  console.log(`peak RSS of wb-backup diff: ${peak.toFixed(0)} MiB (target <= 200 MiB) ${verdict(peak <= 200)}`);
  if (!process.argv.includes('--keep')) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
