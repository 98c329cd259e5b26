// wb-backup restore vs. the reference (tar xzf + PRAGMA integrity_check of each database), same
// data, same run. Usage: npm run bench:restore -- [--mb 460] [--runs 3] [--keep]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSet } from './generate.js';
import { arg, mb, measure, median } from './lib.js';

const CLI = path.resolve('dist/src/cli/main.js');
const runs = Number(arg('runs', '3'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-restore-'));
const root = path.join(work, 'root');
const env = { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' };

async function ours(): Promise<{ ms: number; peakMb: number; childPeakMb: number }> {
  const m = await measure(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--yes', '--json'], { env });
  if (m.code !== 0) throw new Error(`wb-backup restore failed: ${m.stderr}`);
  return { ms: m.ms, peakMb: m.peakMb, childPeakMb: m.childPeakMb };
}

async function reference(tarball: string): Promise<{ ms: number; checkMs: number }> {
  const out = path.join(work, 'ref-out');
  fs.mkdirSync(out);
  const started = Date.now();
  const x = await measure('tar', ['xzf', tarball, '-C', out]);
  if (x.code !== 0) throw new Error(`tar failed: ${x.stderr}`);
  const checkStarted = Date.now();
  for (const f of fs.readdirSync(out).filter((n) => n.endsWith('.db'))) {
    const c = await measure('sqlite3', [path.join(out, f), 'PRAGMA integrity_check']);
    if (c.stdout.trim() !== 'ok') throw new Error(`integrity_check of ${f}: ${c.stdout}`);
  }
  const result = { ms: Date.now() - started, checkMs: Date.now() - checkStarted };
  fs.rmSync(out, { recursive: true, force: true });
  return result;
}

async function main(): Promise<void> {
  generateSet(path.join(root, 'db'), Number(arg('mb', '460')));
  // As on a machine where the hourly job has run before: the previous snapshot's row counts decide
  // the archive order (archive-order.ts). The second snapshot is the one restored (latest).
  const first = await measure(process.execPath, [CLI, '--root', root, 'now', '--json'], { env });
  if (first.code !== 0) throw new Error(first.stderr);
  const snap = await measure(process.execPath, [CLI, '--root', root, 'now', '--json'], { env });
  if (snap.code !== 0) throw new Error(snap.stderr);
  const snapshot = JSON.parse(snap.stdout) as { snapshot_id: string; archive: { bytes: number }; databases: Array<{ bytes: number }> };
  // The reference restores the same data from a plain tar.gz of the same copies.
  const copies = path.join(work, 'copies');
  fs.mkdirSync(copies);
  await measure('tar', ['-I', 'zstd', '-xf', path.join(root, 'backups', `${snapshot.snapshot_id}.tar.zst`), '-C', copies]);
  const flat = path.join(work, 'flat');
  fs.mkdirSync(flat);
  for (const dir of fs.readdirSync(path.join(copies, 'databases'))) {
    for (const f of fs.readdirSync(path.join(copies, 'databases', dir))) fs.renameSync(path.join(copies, 'databases', dir, f), path.join(flat, f));
  }
  const tarball = path.join(work, 'ref.tar.gz');
  await measure('tar', ['czf', tarball, '-C', flat, '.']);
  const dataBytes = snapshot.databases.reduce((n, d) => n + d.bytes, 0);
  console.log(`data: ${snapshot.databases.length} databases, ${mb(dataBytes)}; archive ${mb(snapshot.archive.bytes)} (zstd) vs ${mb(fs.statSync(tarball).size)} (gzip); ${runs} runs each, interleaved`);

  const a: Awaited<ReturnType<typeof ours>>[] = [];
  const b: Awaited<ReturnType<typeof reference>>[] = [];
  // Each side starts with nothing left to write back: otherwise a run pays for flushing the ~570 MiB
  // the previous run (of the other side) left dirty, and wb-backup, which fdatasyncs what it
  // restores, would leave a clean disk to the reference while inheriting the reference's dirty one.
  // Each side also removes what it wrote right after its own run (ours: the pre_restore folder it
  // prunes), then the machine gets a moment: this VM hands freed memory back to its host, and a run
  // that allocates pages just freed by the other side would be measured on warmer memory.
  const settle = async () => {
    await measure('sync', []);
    await new Promise((r) => setTimeout(r, 3000));
  };
  for (let i = 0; i < runs; i++) {
    await settle();
    a.push(await ours());
    await settle();
    b.push(await reference(tarball));
  }
  const secs = (ms: number) => (ms / 1000).toFixed(2);
  console.log(`per run, wb-backup: ${a.map((x) => secs(x.ms)).join(' ')} s; reference: ${b.map((x) => secs(x.ms)).join(' ')} s; ratios: ${a.map((x, i) => (x.ms / b[i]!.ms).toFixed(3)).join(' ')}`);
  const ourMs = median(a.map((x) => x.ms));
  const refMs = median(b.map((x) => x.ms));
  console.log(`${'wb-backup restore latest --yes (all checks)'.padEnd(48)} ${(ourMs / 1000).toFixed(2).padStart(7)} s`);
  console.log(`${'tar xzf + PRAGMA integrity_check (reference)'.padEnd(48)} ${(refMs / 1000).toFixed(2).padStart(7)} s`);
  console.log(`${'  of which integrity_check'.padEnd(48)} ${(median(b.map((x) => x.checkMs)) / 1000).toFixed(2).padStart(7)} s`);
  const ratio = ourMs / refMs;
  console.log(`ratio wb-backup / reference: ${ratio.toFixed(3)} (target <= 0.50) ${ratio <= 0.5 ? 'MET' : 'MISSED'}`);
  const peak = Math.max(...a.map((x) => x.peakMb));
  console.log(`peak RSS of wb-backup: ${peak.toFixed(0)} MiB (target <= 200 MiB) ${peak <= 200 ? 'MET' : 'MISSED'}; zstd child: ${Math.max(...a.map((x) => x.childPeakMb)).toFixed(0)} MiB`);
  if (!process.argv.includes('--keep')) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
