/**
 * Requests the s3 remote makes (issue 17): `hours` simulated hourly backups, each pushing its
 * snapshot, backfilling and sweeping the bucket, against a local S3-compatible server (fauxqs
 * behind test/support's layer). Prints the requests by operation, per run and in all, so the cost
 * against free-tier caps (class A: list, put; class B: get, head) is visible.
 *   npm run bench:s3 -- --hours 48 --rows 20000
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { withRetry } from '../src/remote/retry.js';
import { S3Remote } from '../src/remote/s3/s3-remote.js';
import { startS3Server, useS3TestEnv } from '../test/support/s3-server.js';
import { arg } from './lib.js';

process.env.WB_BACKUP_LOG_LEVEL ??= 'warn'; // the runs' info logs would bury the figures
const hours = Number(arg('hours', '48'));
const rows = Number(arg('rows', '20000'));
useS3TestEnv(); // fake keys for the local server; never the machine's ~/.aws
const s3 = await startS3Server('wb-bench');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-s3-'));
try {
  const file = path.join(root, 'db', 'bench.db');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)');
  const ins = db.prepare('INSERT INTO t (note) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run(`row ${i} with some text`);
  })();
  const settings = { bucket: s3.bucket, prefix: 'bench', endpoint: s3.endpoint, force_path_style: true };
  writeConfigFile(root, { remote: { s3: settings } });
  const backend = new S3Remote(settings);
  const remote = withRetry(backend);
  const start = Date.UTC(2026, 10, 1);
  const perRun: number[] = [];
  for (let h = 0; h < hours; h++) {
    db.prepare('UPDATE t SET note = ? WHERE id = ?').run(`changed at hour ${h}`, 1 + ((h * 997) % rows));
    const before = Object.values(backend.requests).reduce((a, b) => a + b, 0);
    const made = await runBackup(loadConfig(root), { remote, now: () => new Date(start + h * 3_600_000) });
    if (made.remote.status !== 'pushed') throw new Error(`run ${h}: push ${made.remote.status}`);
    perRun.push(Object.values(backend.requests).reduce((a, b) => a + b, 0) - before);
  }
  db.close();
  const kept = (await remote.list()).length;
  const total = backend.requests;
  console.log(`${hours} hourly backups (push + backfill + sweep), ${kept} snapshots kept on the bucket`);
  console.log(`requests in all: ${JSON.stringify(total)}`);
  console.log(`per run: ${(perRun.reduce((a, b) => a + b, 0) / hours).toFixed(1)} on average, ${Math.max(...perRun)} at most`);
  console.log(`class A (list + put) per run: ${((total.list + total.put) / hours).toFixed(1)}; class B (get + head): ${((total.get + total.head) / hours).toFixed(1)}`);
} finally {
  await s3.close();
  fs.rmSync(root, { recursive: true, force: true });
}
