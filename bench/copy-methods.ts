// How to copy a live WAL database while a writer commits ~650 transactions a second: does each
// method finish, how long does it take, and what does it do to the writer's commit latency?
// Usage: npm run bench:copy -- [--mb 100] [--timeout 60]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { generateSet } from './generate.js';
import { arg, startRateWriter } from './lib.js';
import { formatBytes } from '../src/core/size-format.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-copy-'));
const timeoutMs = Number(arg('timeout', '60')) * 1000;

type Method = (src: string, dest: string) => Promise<void>;

const methods: Record<string, Method> = {
  'VACUUM INTO (wb-backup)': async (src, dest) => {
    const db = new Database(src, { timeout: 10_000 });
    db.prepare('VACUUM INTO ?').run(dest);
    db.close();
  },
  'better-sqlite3 backup(), default steps': async (src, dest) => {
    const db = new Database(src, { timeout: 10_000 });
    await db.backup(dest);
    db.close();
  },
  'better-sqlite3 backup(), one step': async (src, dest) => {
    const db = new Database(src, { timeout: 10_000 });
    await db.backup(dest, { progress: () => 1 << 30 });
    db.close();
  },
  'sqlite3 CLI .backup': (src, dest) =>
    new Promise((resolve, reject) => {
      const c = spawn('sqlite3', [src, `.backup ${dest}`], { stdio: 'ignore' });
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
      c.on('error', reject);
    }),
};

function withTimeout(p: Promise<void>, ms: number): Promise<'done' | 'timeout'> {
  return Promise.race([p.then(() => 'done' as const), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
}

async function main(): Promise<void> {
  // messages.db takes 35% of a set, and the generator overshoots its target by about 1.3x.
  const set = generateSet(path.join(work, 'set'), Number(arg('mb', '100')) / 0.35 / 1.3);
  const src = set.files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
  console.log(`source: ${path.basename(src)}, ${formatBytes(fs.statSync(src).size)}, WAL mode; writer at ~650 tx/s`);
  const idle = await startRateWriter(src);
  await new Promise((r) => setTimeout(r, 3000));
  const base = await idle.stop();
  console.log(`${'writer alone (baseline)'.padEnd(42)} ${''.padStart(12)} p50 ${base.p50_ms.toFixed(2)} ms  p99 ${base.p99_ms.toFixed(2)} ms  max ${base.max_ms.toFixed(1)} ms`);
  for (const [name, copy] of Object.entries(methods)) {
    const dest = path.join(work, `copy-${name.replace(/\W+/g, '_')}.db`);
    fs.rmSync(dest, { force: true });
    const writer = await startRateWriter(src);
    const started = Date.now();
    const outcome = await withTimeout(copy(src, dest), timeoutMs);
    const ms = Date.now() - started;
    const stats = await writer.stop();
    const result = outcome === 'done' ? `${(ms / 1000).toFixed(2)} s` : `NOT DONE ${timeoutMs / 1000} s`;
    console.log(`${name.padEnd(42)} ${result.padStart(12)} p50 ${stats.p50_ms.toFixed(2)} ms  p99 ${stats.p99_ms.toFixed(2)} ms  max ${stats.max_ms.toFixed(1)} ms  (${stats.commits} commits)`);
    if (outcome === 'timeout') {
      console.log('  (abandoned: it restarts every time the writer commits; the process exits at the end)');
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(0); // an abandoned step-wise backup may still be pending
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
