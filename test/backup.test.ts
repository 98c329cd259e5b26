import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { readLastRun } from '../src/backup/last-run.js';
import { validateManifest } from '../src/snapshot/manifest.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { defaultHostName } from '../src/root/host.js';
import { extractWithSystemTar, integrityCheck, makeNotesDb, rmrf, startWriter, tableCounts, tempRoot } from './support/fixtures.js';

let root: string;
/** New ids carry the machine (snap-<host>-<time>): this one's, by default (docs/formats.md). */
const h = defaultHostName();
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

function backupsDir(): string {
  return path.join(root, 'backups');
}

describe('snapshot pipeline', () => {
  it('snapshots a database while another process commits continuously, consistently, without disturbing the writer', async () => {
    const live = path.join(root, 'db', 'busy.db');
    fs.mkdirSync(path.dirname(live), { recursive: true });
    makeNotesDb(path.join(root, 'db', 'notes.db'), 200);
    const writer = await startWriter(live);
    let stats: { commits: number; errors: number };
    let result: Awaited<ReturnType<typeof runBackup>>;
    try {
      await new Promise((r) => setTimeout(r, 300)); // let the WAL grow
      result = await runBackup(loadConfig(root));
    } finally {
      stats = await writer.stop();
    }
    expect(stats.errors).toBe(0);
    expect(stats.commits).toBeGreaterThan(0);
    expect(result.databases.map((d) => d.name).sort()).toEqual(['busy', 'notes']);

    const out = path.join(root, 'unpacked');
    const [snapshot] = listLocalSnapshots(root);
    expect(snapshot?.id).toBe(result.snapshot_id);
    extractWithSystemTar(snapshot!.archivePath, out);
    const busyCopy = path.join(out, 'databases', 'busy', 'busy.db');
    expect(integrityCheck(busyCopy)).toBe('ok');
    expect(integrityCheck(path.join(out, 'databases', 'notes', 'notes.db'))).toBe('ok');

    const db = new Database(busyCopy, { readonly: true });
    const events = Number(db.prepare('SELECT count(*) FROM events').pluck().get());
    const counter = Number(db.prepare('SELECT n FROM counter').pluck().get());
    const total = Number(db.prepare('SELECT sum(balance) FROM accounts').pluck().get());
    db.close();
    // One read transaction: the copy holds whole transactions only.
    expect(events).toBe(counter);
    expect(total).toBe(10_000);
    expect(events).toBeGreaterThan(0);
    const busyEntry = result.databases.find((d) => d.name === 'busy')!;
    expect(busyEntry.rows.events).toBe(events);
  });

  it('writes a complete manifest, beside the archive and inside it, with checksums that verify', async () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 50, 7);
    const result = await runBackup(loadConfig(root), { manual: true });
    expect(result.snapshot_id).toMatch(new RegExp(`^snap-${h}-\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}Z-manual$`));
    const [snap] = listLocalSnapshots(root);
    const sidecar = validateManifest(JSON.parse(fs.readFileSync(snap!.manifestPath, 'utf8')));
    const out = path.join(root, 'unpacked');
    extractWithSystemTar(snap!.archivePath, out);
    const inner = validateManifest(JSON.parse(fs.readFileSync(path.join(out, 'MANIFEST.json'), 'utf8')));
    expect(inner).toEqual(sidecar);
    expect(inner.manual).toBe(true);
    expect(inner.tool.name).toBe('wb-backup');
    expect(typeof inner.host).toBe('string');
    const notes = inner.databases[0]!;
    expect(notes).toMatchObject({ name: 'notes', file: 'databases/notes/notes.db', relative_path: path.join('db', 'notes.db'), user_version: 7, journal_mode: 'wal' });
    expect(notes.rows).toEqual({ folders: 3, notes: 50 });
    expect(notes.page_size).toBeGreaterThan(0);
    // sha256sum -c verifies both the archive and the manifest copy with standard tools.
    const check = execFileSync('sha256sum', ['-c', path.basename(snap!.checksumPath)], { cwd: backupsDir() }).toString();
    expect(check).toMatch(/\.tar\.(zst|gz): OK/);
    expect(check).toMatch(/manifest\.json: OK/);
    const dbSha = execFileSync('sha256sum', [path.join(out, notes.file)]).toString().split(' ')[0];
    expect(dbSha).toBe(notes.sha256);
    const last = readLastRun(root)!;
    expect(last).toMatchObject({ ok: true, snapshot_id: result.snapshot_id, databases: 1, error: null });
    expect(last.archive_bytes).toBe(result.archive.bytes);
  });

  it('skips a missing database and a file that is not SQLite, backs up the rest and says why', async () => {
    makeNotesDb(path.join(root, 'db', 'good.db'));
    fs.writeFileSync(path.join(root, 'junk.db'), 'this is not a database, just text '.repeat(200));
    writeConfigFile(root, {
      databases: { good: { path: 'db/good.db' }, gone: { path: 'db/gone.db' }, junk: { path: 'junk.db' } },
    });
    const result = await runBackup(loadConfig(root));
    expect(result.databases.map((d) => d.name)).toEqual(['good']);
    const reasons = Object.fromEntries(result.skipped.map((s) => [s.name, s.reason]));
    expect(reasons.gone).toMatch(/does not exist/);
    expect(reasons.junk).toMatch(/not a SQLite database/);
    expect(readLastRun(root)?.skipped).toHaveLength(2);
  });

  it('packs the largest database first (a restore then checks the smallest last); the manifest keeps configuration order', async () => {
    makeNotesDb(path.join(root, 'db', 'small.db'), 5);
    makeNotesDb(path.join(root, 'db', 'large.db'), 3000);
    makeNotesDb(path.join(root, 'db', 'medium.db'), 300);
    writeConfigFile(root, { databases: { small: { path: 'db/small.db' }, large: { path: 'db/large.db' }, medium: { path: 'db/medium.db' } } });
    const result = await runBackup(loadConfig(root));
    expect(result.databases.map((d) => d.name)).toEqual(['small', 'large', 'medium']);
    const [snap] = listLocalSnapshots(root);
    const entries = execFileSync('tar', ['-I', 'zstd', '-tf', snap!.archivePath], { encoding: 'utf8' }).trim().split('\n');
    expect(entries).toEqual(['databases/large/large.db', 'databases/medium/medium.db', 'databases/small/small.db', 'MANIFEST.json']);
  });

  it('once a snapshot has counted their rows, packs a smaller database of many tiny rows first (its check outlasts its unpacking); a damaged manifest only loses the hint', async () => {
    fs.mkdirSync(path.join(root, 'db'), { recursive: true });
    const docs = new Database(path.join(root, 'db', 'docs.db'));
    docs.exec('CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    docs.transaction(() => {
      const add = docs.prepare('INSERT INTO docs(body) VALUES (?)');
      for (let i = 0; i < 500; i++) add.run(`document ${i} `.repeat(300));
    })();
    docs.close();
    const log = new Database(path.join(root, 'db', 'log.db'));
    log.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, at INTEGER NOT NULL); CREATE INDEX log_at ON log(at);');
    log.transaction(() => {
      const add = log.prepare('INSERT INTO log(at) VALUES (?)');
      for (let i = 0; i < 30_000; i++) add.run(i * 7);
    })();
    log.close();
    writeConfigFile(root, { databases: { docs: { path: 'db/docs.db' }, log: { path: 'db/log.db' } } });
    const entriesOf = (id: string) => {
      const snap = listLocalSnapshots(root).find((s) => s.id === id)!;
      return execFileSync('tar', ['-I', 'zstd', '-tf', snap.archivePath], { encoding: 'utf8' }).trim().split('\n');
    };
    const first = await runBackup(loadConfig(root), { manual: true });
    expect(entriesOf(first.snapshot_id)).toEqual(['databases/docs/docs.db', 'databases/log/log.db', 'MANIFEST.json']);
    // Full snapshots (every database an image) show the order; deltas follow the same order.
    const second = await runBackup(loadConfig(root), { manual: true, full: true });
    expect(entriesOf(second.snapshot_id)).toEqual(['databases/log/log.db', 'databases/docs/docs.db', 'MANIFEST.json']);
    expect(second.databases.map((d) => d.name)).toEqual(['docs', 'log']);

    // A damaged manifest only costs the ordering hint: the next readable one gives it, else size order.
    const damage = (id: string) => fs.writeFileSync(listLocalSnapshots(root).find((s) => s.id === id)!.manifestPath, '{ not json');
    damage(second.snapshot_id);
    const third = await runBackup(loadConfig(root), { manual: true, full: true });
    expect(entriesOf(third.snapshot_id)).toEqual(['databases/log/log.db', 'databases/docs/docs.db', 'MANIFEST.json']);
    for (const id of [first.snapshot_id, third.snapshot_id]) damage(id);
    const fourth = await runBackup(loadConfig(root), { manual: true, full: true });
    expect(entriesOf(fourth.snapshot_id)).toEqual(['databases/docs/docs.db', 'databases/log/log.db', 'MANIFEST.json']);
  });

  it('fails clearly when nothing could be copied, and leaves nothing behind', async () => {
    writeConfigFile(root, { databases: { gone: { path: 'nowhere.db' } } });
    await expect(runBackup(loadConfig(root))).rejects.toThrow(/None of the 1 vital databases could be copied: gone: the file does not exist/);
    expect(listLocalSnapshots(root)).toEqual([]);
    expect(fs.readdirSync(backupsDir()).filter((n) => n !== 'last_run.json')).toEqual([]);
    expect(readLastRun(root)).toMatchObject({ ok: false });
  });

  it('says what to do when there is nothing to back up', async () => {
    const err = await runBackup(loadConfig(root)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('no_databases');
    expect(describeError(err)).toMatch(/databases:/);
  });

  it('gives two snapshots in the same second distinct ids', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    const fixed = new Date('2026-11-22T13:00:00Z');
    const first = await runBackup(loadConfig(root), { now: () => fixed, manual: true });
    const second = await runBackup(loadConfig(root), { now: () => fixed, manual: true });
    expect(first.snapshot_id).toBe(`snap-${h}-2026-11-22T13-00-00Z-manual`);
    expect(second.snapshot_id).toBe(`snap-${h}-2026-11-22T13-00-00Z-1-manual`);
    expect(listLocalSnapshots(root).map((s) => s.id)).toEqual([second.snapshot_id, first.snapshot_id]);
    // Automatic ones too; the hourly tier then keeps only the newest of that hour.
    const auto1 = await runBackup(loadConfig(root), { now: () => fixed });
    const auto2 = await runBackup(loadConfig(root), { now: () => fixed });
    expect([auto1.snapshot_id, auto2.snapshot_id]).toEqual([`snap-${h}-2026-11-22T13-00-00Z`, `snap-${h}-2026-11-22T13-00-00Z-1`]);
    expect(auto2.pruned).toEqual([auto1.snapshot_id]);
  });

  it('sweeps old snapshots with the retention policy, by the time in their ids', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    // Full snapshots only: what the policy alone decides (chains widen it: see the incremental tests).
    writeConfigFile(root, { retention: { hourly: 2, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 1 }, backup: { incremental: { enabled: false } } });
    const at = (iso: string) => () => new Date(iso);
    await runBackup(loadConfig(root), { now: at('2026-11-22T10:00:00Z') });
    await runBackup(loadConfig(root), { now: at('2026-11-22T11:00:00Z') });
    await runBackup(loadConfig(root), { now: at('2026-11-22T11:30:00Z'), manual: true });
    const third = await runBackup(loadConfig(root), { now: at('2026-11-22T12:00:00Z') });
    expect(third.pruned).toEqual([`snap-${h}-2026-11-22T10-00-00Z`]);
    const manual2 = await runBackup(loadConfig(root), { now: at('2026-11-22T12:05:00Z'), manual: true });
    expect(manual2.pruned).toEqual([`snap-${h}-2026-11-22T11-30-00Z-manual`]);
    expect(listLocalSnapshots(root).map((s) => s.id)).toEqual([
      `snap-${h}-2026-11-22T12-05-00Z-manual`,
      `snap-${h}-2026-11-22T12-00-00Z`,
      `snap-${h}-2026-11-22T11-00-00Z`,
    ]);
  });

  it('uses gzip when configured, readable with plain tar -z', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 20);
    writeConfigFile(root, { compression: { codec: 'gzip' } });
    const result = await runBackup(loadConfig(root));
    expect(result.archive.file).toMatch(/\.tar\.gz$/);
    const out = path.join(root, 'unpacked');
    extractWithSystemTar(path.join(backupsDir(), result.archive.file), out);
    expect(tableCounts(path.join(out, 'databases', 'a', 'a.db'))).toEqual({ folders: 3, notes: 20 });
  });
});

describe('configuration', () => {
  it('refuses an invalid config with the field path and what is expected', () => {
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'retention:\n  hourly: -1\nremote:\n  github:\n    repo: not-a-repo\nretension: {}\n');
    expect(() => loadConfig(root)).toThrow(WbError);
    try {
      loadConfig(root);
    } catch (err) {
      const msg = describeError(err);
      expect(msg).toMatch(/retention\.hourly: .*>=\s*0/);
      expect(msg).toMatch(/remote/);
      expect(msg).toMatch(/retension/);
      expect(msg).toMatch(/docs\/configuration\.md/);
    }
  });

  it('works with no config at all: every *.db under <root>/db/, no remote', () => {
    makeNotesDb(path.join(root, 'db', 'tasks', 'task_metadata.db'), 1);
    makeNotesDb(path.join(root, 'db', 'projects.db'), 1);
    const config = loadConfig(root);
    expect(config.databases.map((d) => d.name)).toEqual(['projects', 'tasks.task_metadata']);
    expect(config.remote).toBeNull();
    expect(config.retention).toMatchObject({ hourly: 24, daily: 7, weekly: 4, monthly: 12, annual: null, manual: 20 });
  });
});
