// wb-backup now vs. the reference (sqlite3 .backup of each database + tar czf), same data, same run.
// Usage: npm run bench:snapshot -- [--mb 460] [--runs 3] [--keep]   (--mb 460 gives ~570 MiB on disk)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSet } from './generate.js';
import { arg, mb, measure, median } from './lib.js';

const CLI = path.resolve('dist/src/cli/main.js');
const runs = Number(arg('runs', '3'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-snapshot-'));
const root = path.join(work, 'root');

function dirBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

async function ours(config: string): Promise<{ ms: number; bytes: number; peakMb: number; childPeakMb: number }> {
  fs.rmSync(path.join(root, 'backups'), { recursive: true, force: true });
  fs.writeFileSync(path.join(root, 'wb-backup.yaml'), config);
  const m = await measure(process.execPath, [CLI, '--root', root, 'now', '--json'], { env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
  if (m.code !== 0) throw new Error(`wb-backup now failed: ${m.stderr}`);
  const result = JSON.parse(m.stdout) as { archive: { bytes: number } };
  return { ms: m.ms, bytes: result.archive.bytes, peakMb: m.peakMb, childPeakMb: m.childPeakMb };
}

async function reference(): Promise<{ ms: number; copyMs: number; bytes: number }> {
  const out = path.join(work, 'ref');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.join(out, 'copies'), { recursive: true });
  const started = Date.now();
  for (const f of fs.readdirSync(path.join(root, 'db')).filter((n) => n.endsWith('.db'))) {
    const m = await measure('sqlite3', [path.join(root, 'db', f), `.backup ${path.join(out, 'copies', f)}`]);
    if (m.code !== 0) throw new Error(`sqlite3 .backup failed: ${m.stderr}`);
  }
  const copyMs = Date.now() - started;
  const tar = await measure('tar', ['czf', path.join(out, 'ref.tar.gz'), '-C', path.join(out, 'copies'), '.']);
  if (tar.code !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  return { ms: Date.now() - started, copyMs, bytes: fs.statSync(path.join(out, 'ref.tar.gz')).size };
}

async function main(): Promise<void> {
  const set = generateSet(path.join(root, 'db'), Number(arg('mb', '460')));
  const dataBytes = dirBytes(path.join(root, 'db'));
  console.log(`data: ${set.files.length} WAL databases, ${mb(dataBytes)}; ${runs} runs each, interleaved; ${os.cpus().length} cores`);
  const a: Awaited<ReturnType<typeof ours>>[] = [];
  const b: Awaited<ReturnType<typeof reference>>[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(await ours(''));
    b.push(await reference());
  }
  const zstdRef = await measure('tar', ['-I', 'zstd -3 -T0', '-cf', path.join(work, 'ref', 'ref.tar.zst'), '-C', path.join(work, 'ref', 'copies'), '.']);
  const gz = await ours('compression:\n  codec: gzip\n');

  const ourMs = median(a.map((x) => x.ms));
  const refMs = median(b.map((x) => x.ms));
  const rows: Array<[string, string, string]> = [
    ['wb-backup now (zstd -3, both cores)', `${(ourMs / 1000).toFixed(2)} s`, mb(a[0]!.bytes)],
    ['sqlite3 .backup + tar czf (reference)', `${(refMs / 1000).toFixed(2)} s`, mb(b[0]!.bytes)],
    ['  of which sqlite3 .backup copies', `${(median(b.map((x) => x.copyMs)) / 1000).toFixed(2)} s`, ''],
    ['  tar -I "zstd -3 -T0" of the copies (context)', `${(zstdRef.ms / 1000).toFixed(2)} s`, mb(fs.statSync(path.join(work, 'ref', 'ref.tar.zst')).size)],
    ['wb-backup now with codec gzip (context)', `${(gz.ms / 1000).toFixed(2)} s`, mb(gz.bytes)],
  ];
  for (const [what, time, size] of rows) console.log(`${what.padEnd(48)} ${time.padStart(9)}  ${size}`);
  const ratio = ourMs / refMs;
  console.log(`ratio wb-backup / reference: ${ratio.toFixed(3)} (target <= 0.30) ${ratio <= 0.3 ? 'MET' : 'MISSED'}`);
  console.log(`archive: ours ${mb(a[0]!.bytes)} vs reference ${mb(b[0]!.bytes)} (target: not larger) ${a[0]!.bytes <= b[0]!.bytes ? 'MET' : 'MISSED'}`);
  const peak = Math.max(...a.map((x) => x.peakMb));
  console.log(`peak RSS of wb-backup: ${peak.toFixed(0)} MiB (target <= 200 MiB) ${peak <= 200 ? 'MET' : 'MISSED'}; zstd child: ${Math.max(...a.map((x) => x.childPeakMb)).toFixed(0)} MiB`);

  // "Whatever the size": the same run on a set a third the size.
  fs.rmSync(path.join(root, 'db'), { recursive: true, force: true });
  generateSet(path.join(root, 'db'), Math.round(Number(arg('mb', '460')) / 3), 7);
  const small = await ours('');
  console.log(`peak RSS on a set 1/3 the size (${mb(dirBytes(path.join(root, 'db')))}): ${small.peakMb.toFixed(0)} MiB — memory does not grow with the data`);

  // Correctness once: standard tools read and verify what we wrote.
  const backups = path.join(root, 'backups');
  const sum = execFileSync('sha256sum', ['-c', fs.readdirSync(backups).find((n) => n.endsWith('.sha256'))!], { cwd: backups }).toString();
  console.log(`sha256sum -c: ${sum.trim().split('\n').join('; ')}`);
  if (!process.argv.includes('--keep')) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
