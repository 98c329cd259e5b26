// Incremental snapshots (issue 16): 24 simulated hours of ~1% row churn on a ~600 MB set of 5 WAL
// databases. Each hour, at the same consistent moment (the churn committed and checkpointed, no
// writer running): a wb-backup snapshot (delta or full, as the chain rule decides; pushed to a
// folder remote), a restic 0.14 backup of the same database files, and every WB_BENCH_FULL_EVERY
// hours a forced full wb-backup snapshot of the same files in a second data root. Then the restore
// of the last delta next to the restore of a full of the same data.
//
// Usage: npm run bench:incremental
//   WB_BENCH_MB=600          size of the set on disk, about (MB)
//   WB_BENCH_HOURS=24        simulated hours
//   WB_BENCH_FULL_EVERY=4    a forced full in the second root every N hours (and at the last hour)
//   WB_BENCH_RESTORE=restore restore: `wb-backup restore <id> --yes`; export: `wb-backup export
//                            <id> --db <name> --out <file>` per database; rebuild: every database
//                            rebuilt from its chain by hand, one applyDelta per link
//                            (test/support/chain-rebuild.ts); off: skip
//   WB_BENCH_KEEP=1          keep the work folder
//   WB_BENCH_RESTORE_ONLY=<kept work folder>   only the restore comparison, on an earlier run's roots
//   WB_BENCH_PROFILE=0       skip the profile of a delta's steps
//   WB_BENCH_CHURN=agent     agent: the issue's workload as an agent writes (see churn()); heavy: the
//                            first measurements' workload (rows grow, random copies); largest: heavy
//                            on each database's largest table only
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { generateSet } from './generate.js';
import { measure, median, mb, type Measured } from './lib.js';
import { rebuildDatabase } from '../test/support/chain-rebuild.js';
import { openPageImage } from '../src/pages/image.js';
import { PageIndexBuilder } from '../src/pages/page-index.js';
import { readPageSet } from '../src/pages/page-set.js';
import { writeDelta } from '../src/pages/delta.js';
import { verifyAgainstChecksums } from '../src/snapshot/checksums.js';
import { countRows } from '../src/core/sqlite-util.js';
import { localChainIds } from '../src/snapshot/chain-set.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';

const MB = Number(process.env.WB_BENCH_MB ?? 600);
const HOURS = Number(process.env.WB_BENCH_HOURS ?? 24);
const FULL_EVERY = Number(process.env.WB_BENCH_FULL_EVERY ?? 4);
const PROFILE = process.env.WB_BENCH_PROFILE !== '0';
// agent (default) / heavy / largest: see churn(). `all` is the old name of heavy.
const CHURN = ((process.env.WB_BENCH_CHURN ?? 'agent') === 'all' ? 'heavy' : (process.env.WB_BENCH_CHURN ?? 'agent')) as 'agent' | 'heavy' | 'largest';
if (!['agent', 'heavy', 'largest'].includes(CHURN)) throw new Error(`WB_BENCH_CHURN=${CHURN}: use agent, heavy or largest`);
const RESTORE = (process.env.WB_BENCH_RESTORE ?? 'restore') as 'rebuild' | 'restore' | 'export' | 'off';
const CLI = path.resolve('dist/src/cli/main.js');
const CHILD = path.resolve('bench/incremental-child.mjs');
const RESTIC = '/usr/bin/restic';

// WB_BENCH_RESTORE_ONLY=<work folder kept by WB_BENCH_KEEP=1>: only the restore comparison, on it.
const RESTORE_ONLY = process.env.WB_BENCH_RESTORE_ONLY;
const work = RESTORE_ONLY ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-incr-'));
const root = path.join(work, 'root');
const fullRoot = path.join(work, 'full-root');
const remoteDir = path.join(work, 'remote');
const resticRepo = path.join(work, 'restic');
const dbDir = path.join(root, 'db');
const env = { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' };
// The repository password lives in this process's environment only (never on a command line or in a file).
const resticEnv = { ...process.env, RESTIC_PASSWORD: 'bench-only', RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };

/** mulberry32, seeded: the same churn every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function dirBytes(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return n;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const q = (s: string) => `"${s.replace(/"/g, '""')}"`;

interface ChurnCounts {
  updates: number;
  inserts: number;
  deletes: number;
}

/**
 * How each table of the generated set (bench/generate.ts) is used by an agent, for the default
 * workload: `log` tables are appended to and pruned from their oldest end (an event log, a task's
 * history, a chat); `record` tables are edited in place, added to and deleted from anywhere.
 */
const LOG_TABLES = new Set(['events', 'task_history', 'messages']);

/**
 * One simulated hour of changes, one transaction per database, then a TRUNCATE checkpoint, as an
 * agent's store looks between two hourly snapshots. Of each table's rows: 0.5% updated, 0.5%
 * inserted, 0.25% deleted (the issue's "~1% of rows changed per hour").
 *
 * WB_BENCH_CHURN=agent (default), the issue's workload read as an agent writes:
 * - record tables (tasks, entities, docs, projects, threads): updates at random rows that rewrite
 *   a stretch of the widest text column with the same number of characters (an edit keeps a
 *   row's size: no page split), inserts of new rows appended after the largest key with the
 *   newest timestamps, deletes at random rows (with the rows that reference them);
 * - log tables (events, task_history, messages): no updates; inserts appended as above; deletes
 *   of the oldest rows (retention pruning).
 * WB_BENCH_CHURN=heavy (the workload of the first measurements): every table, updates at random
 * rows that append " edited h<hour>" to the widest text column (rows grow: pages split), inserts
 * as copies of random rows (their index entries land anywhere), deletes at random rows.
 * WB_BENCH_CHURN=largest: heavy, on each database's largest table only.
 */
function churn(hour: number, r: () => number): ChurnCounts {
  const counts: ChurnCounts = { updates: 0, inserts: 0, deletes: 0 };
  const agent = CHURN === 'agent';
  for (const file of fs.readdirSync(dbDir).filter((f) => f.endsWith('.db')).sort()) {
    const db = new Database(path.join(dbDir, file));
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
    // Which tables reference which (deleting a parent row deletes its children first).
    const children = new Map<string, Array<{ table: string; from: string }>>();
    for (const t of tables) {
      for (const fk of db.prepare(`PRAGMA foreign_key_list(${q(t)})`).all() as Array<{ table: string; from: string }>) {
        children.set(fk.table, [...(children.get(fk.table) ?? []), { table: t, from: fk.from }]);
      }
    }
    const keyOf = (t: string): string => {
      try {
        db.prepare(`SELECT rowid FROM ${q(t)} LIMIT 1`).get();
        return 'rowid';
      } catch {
        const pk = (db.prepare(`PRAGMA table_info(${q(t)})`).all() as Array<{ name: string; pk: number }>).find((c) => c.pk === 1)!;
        return q(pk.name); // WITHOUT ROWID: its primary key is the key
      }
    };
    const cascade = (t: string, key: string, k: number | string): number => {
      for (const child of children.get(t) ?? []) {
        const ck = keyOf(child.table);
        for (const ref of db.prepare(`SELECT ${ck} FROM ${q(child.table)} WHERE ${q(child.from)} = ?`).pluck().all(k) as Array<number | string>) cascade(child.table, ck, ref);
      }
      return db.prepare(`DELETE FROM ${q(t)} WHERE ${key} = ?`).run(k).changes;
    };
    const counted = tables.map((t) => [t, Number(db.prepare(`SELECT count(*) FROM ${q(t)}`).pluck().get())] as const);
    const churned = CHURN === 'largest' ? [counted.slice().sort((a, b) => b[1] - a[1])[0]![0]] : tables;
    db.transaction(() => {
      for (const t of churned) {
        const cols = db.prepare(`PRAGMA table_info(${q(t)})`).all() as Array<{ name: string; type: string; pk: number }>;
        const key = keyOf(t);
        const rowid = key === 'rowid';
        const keys = db.prepare(`SELECT ${key} FROM ${q(t)}${agent ? ` ORDER BY ${key}` : ''}`).pluck().all() as Array<number | string>; // agent: oldest first
        if (keys.length === 0) continue;
        const log = agent && LOG_TABLES.has(t);
        const pick = () => keys[Math.floor(r() * keys.length)]!;
        const texts = cols.filter((c) => c.pk === 0 && c.type.toUpperCase() === 'TEXT');
        // The widest text column is the one edited (a note, a body): what an agent rewrites.
        const edited = texts.length ? texts.map((c) => [c.name, Number(db.prepare(`SELECT avg(length(${q(c.name)})) FROM (SELECT ${q(c.name)} FROM ${q(t)} LIMIT 200)`).pluck().get() ?? 0)] as const).sort((a, b) => b[1] - a[1])[0]![0] : null;
        const nUpdates = Math.round(keys.length * 0.005);
        if (edited && !agent) {
          const upd = db.prepare(`UPDATE ${q(t)} SET ${q(edited)} = ${q(edited)} || ? WHERE ${key} = ?`);
          for (let i = 0; i < nUpdates; i++) counts.updates += upd.run(` edited h${hour}`, pick()).changes;
        } else if (edited && !log) {
          // Up to 40 letters of the text rewritten in place: as long as it was (JSON stays JSON).
          const get = db.prepare(`SELECT ${q(edited)} FROM ${q(t)} WHERE ${key} = ?`).pluck();
          const upd = db.prepare(`UPDATE ${q(t)} SET ${q(edited)} = ? WHERE ${key} = ?`);
          for (let i = 0; i < nUpdates; i++) {
            const k = pick();
            const text = get.get(k) as string | undefined;
            if (text === undefined) continue;
            const at = Math.floor(r() * Math.max(1, text.length - 40));
            const stretch = text.slice(at, at + 40).replace(/[a-z]/g, () => String.fromCharCode(97 + Math.floor(r() * 26)));
            counts.updates += upd.run(text.slice(0, at) + stretch + text.slice(at + 40), k).changes;
          }
        }
        const nInserts = Math.round(keys.length * 0.005);
        if (agent) {
          // New rows after the largest key: a copy of a random row's contents (its sizes), with the
          // newest timestamps (columns named at / *_at), so the table and its time indexes grow at their end.
          const newest = new Map(cols.filter((c) => c.name === 'at' || c.name.endsWith('_at')).map((c) => [c.name, db.prepare(`SELECT max(${q(c.name)}) FROM ${q(t)}`).pluck().get() as number | string]));
          const copyCols = cols.filter((c) => (rowid ? c.pk === 0 : true));
          const names = copyCols.map((c) => q(c.name)).join(', ');
          const values = copyCols.map((c) => (!rowid && c.pk > 0 ? '?' : newest.has(c.name) ? '?' : q(c.name))).join(', ');
          const ins = db.prepare(`INSERT INTO ${q(t)}(${names}) SELECT ${values} FROM ${q(t)} WHERE ${key} = ?`);
          const last = keys[keys.length - 1]!;
          for (let i = 0; i < nInserts; i++) {
            const stamps = [...newest.values()].map((v) => (typeof v === 'number' ? v + 1 + i : v)); // ISO texts: the newest one again (sorts last)
            const params = rowid ? [...stamps, pick()] : [`${String(last)}~h${String(hour).padStart(3, '0')}-${String(i).padStart(6, '0')}`, ...stamps, pick()];
            counts.inserts += ins.run(...params).changes;
          }
        } else {
          const copyCols = cols.filter((c) => (rowid ? c.pk === 0 : true));
          const names = copyCols.map((c) => q(c.name)).join(', ');
          const values = copyCols.map((c) => (!rowid && c.pk > 0 ? '?' : q(c.name))).join(', ');
          const ins = db.prepare(`INSERT INTO ${q(t)}(${names}) SELECT ${values} FROM ${q(t)} WHERE ${key} = ?`);
          for (let i = 0; i < nInserts; i++) {
            counts.inserts += (rowid ? ins.run(pick()) : ins.run(`n${hour}-${i}-${Math.floor(r() * 1e9)}`, pick())).changes;
          }
        }
        // Small lookup tables (projects, threads) keep their rows; elsewhere a deleted row takes
        // the rows that reference it along (recursively), as the application would.
        if ((children.get(t)?.length ?? 0) > 0 && keys.length < 10_000) continue;
        const nDeletes = Math.round(keys.length * 0.0025);
        if (log) {
          for (let i = 0; i < nDeletes; i++) counts.deletes += cascade(t, key, keys[i]!);
        } else {
          for (let i = 0; i < nDeletes; i++) counts.deletes += cascade(t, key, pick());
        }
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  }
  return counts;
}

interface Snap {
  m: Measured;
  id: string;
  kind: 'full' | 'delta';
  fullBecause?: string;
  archiveBytes: number;
  /** bytes of every file the snapshot added to backups/ (archive, manifest, checksums, page indexes) */
  localBytes: number;
  /** bytes the snapshot added to the folder remote */
  uploadedBytes: number;
  peakMb: number;
  /** pages stored in its deltas / pages of its databases (the share of pages that changed since the base) */
  changedPages: number;
  pages: number;
  steps: Array<{ message: string; at_ms: number }>;
  /** runBackup's own time, without starting node and loading the code */
  inProcessMs: number;
  /** CPU time of the process and its zstd children, ms */
  cpuMs: number;
}

/** Files of backups/ that belong to snapshot `id`, in bytes. */
function snapshotBytes(backupsDir: string, id: string): number {
  return fs.readdirSync(backupsDir).filter((f) => f.startsWith(`${id}.`)).reduce((n, f) => n + fs.statSync(path.join(backupsDir, f)).size, 0);
}

async function snapshot(dataRoot: string, at: Date, full: boolean): Promise<Snap> {
  const remoteBefore = new Set(fs.existsSync(remoteDir) ? fs.readdirSync(remoteDir) : []);
  const m = await measure(process.execPath, [CHILD, dataRoot, at.toISOString(), ...(full ? ['full'] : [])], { env });
  if (m.code !== 0) throw new Error(`wb-backup snapshot failed: ${m.stderr}`);
  const out = JSON.parse(m.stdout.trim().split('\n').pop()!) as {
    result: { snapshot_id: string; kind: 'full' | 'delta'; full_because?: string; archive: { bytes: number }; remote: { status: string } };
    maxRssKb: number;
    steps: Snap['steps'];
    total_ms: number;
    cpu_ms: number;
  };
  const id = out.result.snapshot_id;
  const manifest = JSON.parse(fs.readFileSync(path.join(dataRoot, 'backups', `${id}.manifest.json`), 'utf8')) as { databases: Array<{ page_count: number; delta?: { changed_pages: number } }> };
  const uploaded = fs.existsSync(remoteDir) ? fs.readdirSync(remoteDir).filter((n) => !remoteBefore.has(n)).reduce((n, d) => n + dirBytes(path.join(remoteDir, d)), 0) : 0;
  return {
    m,
    id,
    kind: out.result.kind,
    ...(out.result.full_because ? { fullBecause: out.result.full_because } : {}),
    archiveBytes: out.result.archive.bytes,
    localBytes: snapshotBytes(path.join(dataRoot, 'backups'), id),
    uploadedBytes: uploaded,
    peakMb: Math.max(m.peakMb, out.maxRssKb / 1024),
    changedPages: manifest.databases.reduce((n, d) => n + (d.delta?.changed_pages ?? d.page_count), 0),
    pages: manifest.databases.reduce((n, d) => n + d.page_count, 0),
    steps: out.steps,
    inProcessMs: out.total_ms,
    cpuMs: out.cpu_ms,
  };
}

function restic(args: string[]): string {
  const r = spawnSync(RESTIC, ['-r', resticRepo, ...args], { env: resticEnv, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`restic ${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

async function resticBackup(): Promise<{ ms: number; added: number; dataAdded: number }> {
  const before = dirBytes(resticRepo);
  const files = fs.readdirSync(dbDir).filter((f) => f.endsWith('.db')).sort().map((f) => path.join(dbDir, f));
  const m = await measure(RESTIC, ['-r', resticRepo, 'backup', '--json', '--host', 'bench', '--compression', 'auto', ...files], { env: resticEnv });
  if (m.code !== 0) throw new Error(`restic backup failed: ${m.stderr}`);
  const summary = m.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message_type: string; data_added?: number }).find((x) => x.message_type === 'summary');
  return { ms: m.ms, added: dirBytes(resticRepo) - before, dataAdded: summary?.data_added ?? 0 };
}

/** Restores (or rebuilds) every database of snapshot `id` of `dataRoot`; wall time in ms. */
async function restoreTime(dataRoot: string, id: string): Promise<number> {
  const names = (JSON.parse(fs.readFileSync(path.join(dataRoot, 'backups', `${id}.manifest.json`), 'utf8')) as { databases: Array<{ name: string }> }).databases.map((d) => d.name);
  const out = path.join(work, 'restored');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  spawnSync('sync');
  try {
    if (RESTORE === 'restore') {
      const m = await measure(process.execPath, [CLI, '--root', dataRoot, 'restore', id, '--yes', '--json'], { env });
      if (m.code !== 0) throw new Error(`wb-backup restore failed: ${m.stderr}`);
      return m.ms;
    }
    if (RESTORE === 'export') {
      let ms = 0;
      for (const name of names) {
        const m = await measure(process.execPath, [CLI, '--root', dataRoot, 'export', id, '--db', name, '--out', path.join(out, `${name}.db`)], { env });
        if (m.code !== 0) throw new Error(`wb-backup export failed: ${m.stderr}`);
        ms += m.ms;
      }
      return ms;
    }
    const started = performance.now();
    for (const name of names) await rebuildDatabase(path.join(dataRoot, 'backups'), id, name, path.join(out, `${name}.db`), path.join(work, 'rebuild-tmp'));
    return performance.now() - started;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/**
 * Where a delta snapshot's time goes, each step alone over the live set (in this process, one
 * core, page cache warm): the image read, the per-page hashes and the image's sha256, the row
 * counts, the delta written against the newest snapshot's page-hash indexes (selection + zstd),
 * and the chain check (every archive of the newest chain against its checksums).
 */
async function profile(): Promise<void> {
  const files = fs.readdirSync(dbDir).filter((f) => f.endsWith('.db')).sort().map((f) => path.join(dbDir, f));
  const timed = async (f: () => unknown) => {
    const s = performance.now();
    await f();
    return performance.now() - s;
  };
  let bytes = 0;
  const read = await timed(() => {
    for (const f of files) {
      const img = openPageImage(f);
      for (const c of img.chunks()) bytes += c.data.length;
      img.close();
    }
  });
  const hashed = await timed(() => {
    for (const f of files) {
      const img = openPageImage(f);
      const b = new PageIndexBuilder(img.pageSize);
      for (const c of img.chunks()) b.add(c.data);
      b.finish();
      img.close();
    }
  });
  const rows = await timed(() => {
    for (const f of files) {
      const img = openPageImage(f);
      img.read((db) => countRows(db));
      img.close();
    }
  });
  const newest = listLocalSnapshots(root)[0]!;
  const set = readPageSet(newest.pagesPath, newest.id);
  let deltaBytes = 0;
  const delta = await timed(async () => {
    for (const f of files) {
      const name = path.basename(f, '.db');
      const img = openPageImage(f);
      const out = path.join(work, `profile-${name}.delta`);
      const w = await writeDelta({ out, base: { snapshotId: newest.id, db: name, index: set.databases.get(name)!.index }, pageSize: img.pageSize, pageCount: img.pageCount, chunks: img.chunks(), codec: 'zstd' });
      deltaBytes += w.bytes;
      img.close();
      fs.rmSync(out);
    }
  });
  const snapshots = listLocalSnapshots(root);
  const chainIds = localChainIds(root, newest.id);
  let chainBytes = 0;
  const chain = await timed(async () => {
    for (const id of chainIds) {
      const s = snapshots.find((x) => x.id === id)!;
      chainBytes += s.bytes;
      await verifyAgainstChecksums(s.checksumPath, s.archivePath);
    }
  });
  console.log(`profile of a delta's steps over the live set after one more hour of churn (${mb(bytes)}, one core, cache warm):`);
  console.log(`  image read only                      ${secs(read)}`);
  console.log(`  image read + page hashes + sha256    ${secs(hashed)}  (hashing ${secs(hashed - read)})`);
  console.log(`  row counts (count(*) of each table)  ${secs(rows)}`);
  console.log(`  delta written against ${newest.id}: read + hashes + selection + zstd ${secs(delta)}  (${mb(deltaBytes)}; selection + zstd ${secs(delta - hashed)})`);
  console.log(`  chain check: ${chainIds.length} archive(s), ${mb(chainBytes)}, against their checksums  ${secs(chain)}  (what re-reading them would cost: a snapshot re-reads only an archive whose file changed)`);
}

/**
 * The restore of the last delta (in the first root) next to the restore of a full (the second
 * root's) of the same hour: each twice, interleaved, the faster of each counts. Returns the ratio.
 */
async function compareRestores(deltaId: string, fullId: string): Promise<number> {
  const d: number[] = [];
  const f: number[] = [];
  for (let i = 0; i < 2; i++) {
    d.push(await restoreTime(root, deltaId));
    f.push(await restoreTime(fullRoot, fullId));
  }
  const chain = localChainIds(root, deltaId);
  console.log(`restore (${RESTORE}) of the last delta ${deltaId} (a chain of ${chain.length} archives: ${chain.join(' < ')}): ${d.map(secs).join(', ')}; of the full ${fullId}: ${f.map(secs).join(', ')}`);
  return Math.min(...d) / Math.min(...f);
}

/** WB_BENCH_RESTORE_ONLY: the restore comparison on the roots of an earlier run. */
async function restoreOnly(): Promise<void> {
  const lastDelta = listLocalSnapshots(root).find((s) => (JSON.parse(fs.readFileSync(s.manifestPath, 'utf8')) as { kind?: string }).kind === 'delta');
  const full = listLocalSnapshots(fullRoot)[0];
  if (!lastDelta || !full) throw new Error(`${work} holds no delta snapshot in root/ or no full in full-root/`);
  const ratio = await compareRestores(lastDelta.id, full.id);
  console.log(`target restore of a delta <= 1.2x a full (${RESTORE}): ${ratio.toFixed(3)}x  ${verdict(ratio <= 1.2)}`);
}

function writeConfig(dataRoot: string, text: string): void {
  fs.mkdirSync(dataRoot, { recursive: true });
  fs.writeFileSync(path.join(dataRoot, 'wb-backup.yaml'), text);
}

function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'MISS';
}

async function main(): Promise<void> {
  if (RESTORE_ONLY) return restoreOnly();
  const version = spawnSync(RESTIC, ['version'], { encoding: 'utf8' }).stdout.trim();
  // generate.ts's size argument, in MiB, lands within a few % of the size on disk once checkpointed.
  const genStarted = Date.now();
  generateSet(dbDir, (MB * 1e6) / 2 ** 20);
  for (const f of fs.readdirSync(dbDir).filter((n) => n.endsWith('.db'))) {
    const db = new Database(path.join(dbDir, f));
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  }
  const dbFiles = fs.readdirSync(dbDir).filter((f) => f.endsWith('.db')).sort();
  console.log(`data: ${dbFiles.length} WAL databases, ${mb(dirBytes(dbDir))} (generated in ${secs(Date.now() - genStarted)}); ${HOURS} simulated hours; ${os.cpus().length} cores; ${version}; restore mode: ${RESTORE}; churn: ${CHURN}`);
  console.log('consistent moment: each hour the churn commits and checkpoints (TRUNCATE), then with no writer running wb-backup snapshots the live files and restic backs up the same .db files');

  writeConfig(root, `remote:\n  dir:\n    path: ${JSON.stringify(remoteDir)}\n`);
  fs.mkdirSync(remoteDir);
  // The second root backs up the very same files, always whole: the "full archive" of each hour.
  writeConfig(fullRoot, `databases:\n${dbFiles.map((f) => `  ${f.replace(/\.db$/, '')}:\n    path: ${JSON.stringify(path.join(dbDir, f))}`).join('\n')}\nbackup:\n  incremental:\n    enabled: false\n`);
  restic(['init', '--repository-version', '2']);

  const start = new Date(Math.floor(Date.now() / 3600_000) * 3600_000 - (HOURS + 2) * 3600_000);
  const at = (h: number) => new Date(start.getTime() + h * 3600_000);
  const first = await snapshot(root, at(0), false);
  const r0 = await resticBackup();
  console.log(`hour 0: wb-backup ${first.kind} ${mb(first.localBytes)} in ${secs(first.m.ms)} (peak ${first.peakMb.toFixed(0)} MiB); restic initial ${mb(r0.added)} in ${secs(r0.ms)}`);

  const r = rng(16);
  const hours: Array<{ h: number; snap: Snap; restic: Awaited<ReturnType<typeof resticBackup>>; full: Snap | null; churn: ChurnCounts; churnMs: number }> = [];
  const header = 'hour  churn(upd/ins/del)        wb kind   pages stored   local added  uploaded   wb time   peak RSS   restic added  restic time   full (2nd root)';
  console.log(header);
  let lastFull: Snap | null = null;
  for (let h = 1; h <= HOURS; h++) {
    const c0 = performance.now();
    const churned = churn(h, r);
    const churnMs = performance.now() - c0;
    const snap = await snapshot(root, at(h), false);
    const rs = await resticBackup();
    let full: Snap | null = null;
    if (h % FULL_EVERY === 0 || h === HOURS) {
      // Only the newest full is kept in the second root (a full needs nothing older).
      fs.rmSync(path.join(fullRoot, 'backups'), { recursive: true, force: true });
      full = await snapshot(fullRoot, at(h), true);
      lastFull = full;
    }
    hours.push({ h, snap, restic: rs, full, churn: churned, churnMs });
    console.log(
      `${String(h).padStart(4)}  ${`${churned.updates}/${churned.inserts}/${churned.deletes}`.padEnd(24)}  ${snap.kind.padEnd(6)}  ${`${((100 * snap.changedPages) / snap.pages).toFixed(1)}%`.padStart(12)}  ${mb(snap.localBytes).padStart(11)}  ${mb(snap.uploadedBytes).padStart(9)}  ${secs(snap.m.ms).padStart(8)}  ${`${snap.peakMb.toFixed(0)} MiB`.padStart(9)}  ${mb(rs.added).padStart(12)}  ${secs(rs.ms).padStart(11)}   ${full ? `${mb(full.localBytes)} in ${secs(full.m.ms)} (peak ${full.peakMb.toFixed(0)} MiB)` : ''}${snap.fullBecause ? `   [full: ${snap.fullBecause}]` : ''}`,
    );
  }

  // Where a delta snapshot's time goes: the progress steps of the median one.
  const deltas = hours.filter((x) => x.snap.kind === 'delta');
  const fulls = hours.flatMap((x) => (x.full ? [x.full] : []));
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const local = mean(hours.map((x) => x.snap.localBytes));
  const uploaded = mean(hours.map((x) => x.snap.uploadedBytes));
  const localDeltas = mean(deltas.map((x) => x.snap.localBytes));
  const resticAdded = mean(hours.map((x) => x.restic.added));
  const deltaMs = median(deltas.map((x) => x.snap.m.ms));
  const fullMs = median(fulls.map((x) => x.m.ms));
  const peak = Math.max(first.peakMb, ...hours.map((x) => x.snap.peakMb), ...fulls.map((f) => f.peakMb));
  const zstdPeak = Math.max(first.m.childPeakMb, ...hours.map((x) => x.snap.m.childPeakMb), ...fulls.map((f) => f.m.childPeakMb));

  console.log('');
  console.log(`snapshots: ${deltas.length} deltas, ${hours.length - deltas.length} fulls by the chain rule (${[...new Set(hours.flatMap((x) => (x.snap.fullBecause ? [x.snap.fullBecause] : [])))].join('; ') || 'none'})`);
  console.log(`pages that changed in an hour (stored by the deltas): ${((100 * deltas.reduce((n, x) => n + x.snap.changedPages, 0)) / deltas.reduce((n, x) => n + x.snap.pages, 0)).toFixed(1)}% of ${Math.round(mean(deltas.map((x) => x.snap.pages)))} pages`);
  console.log(`bytes added per hourly snapshot: wb-backup ${mb(local)} locally (deltas alone ${mb(localDeltas)}), ${mb(uploaded)} uploaded; restic ${mb(resticAdded)} (its data_added, before compression: ${mb(mean(hours.map((x) => x.restic.dataAdded)))}); a full archive ${mb(mean(fulls.map((f) => f.localBytes)))}`);
  console.log(`snapshot wall time: delta ${secs(deltaMs)} (median of ${deltas.length}), full ${secs(fullMs)} (median of ${fulls.length}); restic ${secs(median(hours.map((x) => x.restic.ms)))}`);
  const med = deltas.length ? deltas.slice().sort((a, b) => a.snap.m.ms - b.snap.m.ms)[Math.floor(deltas.length / 2)]! : null;
  if (med) console.log(`median delta (hour ${med.h}) steps, ms from start: ${med.snap.steps.map((s) => `${s.at_ms} ${s.message}`).join(' | ')}; runBackup ${med.snap.inProcessMs} ms, ${med.snap.m.ms.toFixed(0)} ms with node's start`);
  if (lastFull) console.log(`a full's steps (hour ${hours.find((x) => x.full === lastFull)!.h}), ms from start: ${lastFull.steps.map((s) => `${s.at_ms} ${s.message}`).join(' | ')}; runBackup ${lastFull.inProcessMs} ms, ${lastFull.m.ms.toFixed(0)} ms with node's start`);
  console.log(`in-process runBackup time: delta ${secs(median(deltas.map((x) => x.snap.inProcessMs)))}, full ${secs(median(fulls.map((x) => x.inProcessMs)))} (medians)`);
  const deltaCpu = median(deltas.map((x) => x.snap.cpuMs));
  const fullCpu = median(fulls.map((x) => x.cpuMs));
  console.log(`CPU time (process + zstd children; less disturbed by other load than wall time): delta ${secs(deltaCpu)}, full ${secs(fullCpu)} (medians): ${(deltaCpu / fullCpu).toFixed(3)}x`);

  let restoreRatio = NaN;
  const lastDelta = deltas.at(-1);
  if (RESTORE !== 'off' && lastDelta && lastFull) restoreRatio = await compareRestores(lastDelta.snap.id, lastFull.id);

  if (PROFILE && deltas.length) {
    // One more hour of churn first, so the profiled delta holds an hour of changes.
    churn(HOURS + 1, r);
    console.log('');
    await profile();
  }

  console.log('');
  const bytesRatio = local / resticAdded;
  console.log(`target bytes added per hourly snapshot <= 0.06x restic: ${bytesRatio.toFixed(3)}x (deltas alone ${(localDeltas / resticAdded).toFixed(3)}x, uploaded ${(uploaded / resticAdded).toFixed(3)}x)  ${verdict(bytesRatio <= 0.06)}`);
  console.log(`target delta snapshot time <= 0.3x a full: ${(deltaMs / fullMs).toFixed(3)}x  ${verdict(deltaMs / fullMs <= 0.3)}`);
  if (RESTORE !== 'off') console.log(`target restore of a delta <= 1.2x a full (${RESTORE}): ${restoreRatio.toFixed(3)}x  ${verdict(restoreRatio <= 1.2)}`);
  console.log(`target peak RSS <= 200 MiB: ${peak.toFixed(0)} MiB (zstd child ${zstdPeak.toFixed(0)} MiB)  ${verdict(peak <= 200)}`);

  if (process.env.WB_BENCH_KEEP) console.log(`kept ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  if (!process.env.WB_BENCH_KEEP && !RESTORE_ONLY) fs.rmSync(work, { recursive: true, force: true });
  process.exit(1);
});
