import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { readLocalManifest } from '../src/snapshot/chain-set.js';
import { readPageSet } from '../src/pages/page-set.js';
import { planChain } from '../src/backup/chain-plan.js';
import { runCheck } from '../src/check/run.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

const hour = (h: number) => () => new Date(Date.UTC(2026, 10, 22, h, 0, 0));
const snapshot = (id: string) => listLocalSnapshots(root).find((s) => s.id === id)!;
const manifestOf = (id: string) => readLocalManifest(snapshot(id))!;

/** A database big enough that a few changed pages are a small share of it. */
function bigNotes(file: string, rows = 3000): void {
  makeNotesDb(file, rows);
}

function touch(file: string, sql: string): void {
  const db = new Database(file);
  db.exec(sql);
  db.close();
}

describe('incremental snapshots: what each hourly snapshot stores', () => {
  it('the second snapshot stores only the changed pages as a delta on the first, and says so', async () => {
    const live = path.join(root, 'db', 'notes.db');
    bigNotes(live);
    const first = await runBackup(loadConfig(root), { now: hour(10) });
    expect(first.kind).toBe('full');
    expect(first.full_because).toMatch(/no earlier snapshot/);
    touch(live, "UPDATE notes SET title = 'changed' WHERE id IN (5, 1500, 2900); INSERT INTO notes(folder_id, title, body) VALUES (1, 'new', 'x')");
    const second = await runBackup(loadConfig(root), { now: hour(11) });
    expect(second).toMatchObject({ kind: 'delta', base: first.snapshot_id });
    const db = second.databases[0]!;
    expect(db.stored).toBe('delta');
    expect(db.stored_bytes).toBeLessThan(db.bytes / 10);
    expect(second.archive.bytes).toBeLessThan(first.archive.bytes / 4);
    const m = manifestOf(second.snapshot_id);
    expect(m).toMatchObject({ manifest_version: 2, kind: 'delta', base: first.snapshot_id });
    expect(m.databases[0]!.delta).toMatchObject({ file: 'databases/notes/notes.db.delta', base_sha256: manifestOf(first.snapshot_id).databases[0]!.sha256 });
    expect(m.databases[0]!.delta!.changed_pages).toBeGreaterThan(0);
    // Each snapshot keeps the page-hash index its successor compares with.
    const pages = readPageSet(snapshot(second.snapshot_id).pagesPath, second.snapshot_id);
    expect(pages.databases.get('notes')!.index.imageSha256).toBe(db.sha256);
  });

  it('retention keeps a snapshot that a kept delta is built on, and deletes it once nothing depends on it', async () => {
    const live = path.join(root, 'db', 'notes.db');
    bigNotes(live);
    writeConfigFile(root, { retention: { hourly: 1, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 0 } });
    const first = await runBackup(loadConfig(root), { now: hour(10) });
    touch(live, "UPDATE notes SET title = 'a' WHERE id = 7");
    const second = await runBackup(loadConfig(root), { now: hour(11) });
    expect(second.kind).toBe('delta');
    // The policy keeps only the newest hourly; its chain needs the first.
    expect(second.pruned).toEqual([]);
    expect(listLocalSnapshots(root).map((s) => s.id)).toEqual([second.snapshot_id, first.snapshot_id]);
    const third = await runBackup(loadConfig(root), { now: hour(12), full: true });
    expect(third).toMatchObject({ kind: 'full', full_because: expect.stringMatching(/asked for/) });
    expect(third.pruned.sort()).toEqual([first.snapshot_id, second.snapshot_id].sort());
  });

  it('a damaged base archive is noticed at snapshot time: the next snapshot is a full one', async () => {
    const live = path.join(root, 'db', 'notes.db');
    bigNotes(live);
    const first = await runBackup(loadConfig(root), { now: hour(10) });
    const archive = snapshot(first.snapshot_id).archivePath;
    const bytes = fs.readFileSync(archive);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    fs.writeFileSync(archive, bytes);
    const second = await runBackup(loadConfig(root), { now: hour(11) });
    expect(second).toMatchObject({ kind: 'full', base: null, full_because: expect.stringMatching(/damaged/) });
  });

  it('each archive of the chain is read once: the next snapshot re-reads only one whose file changed, or one a check found damaged', async () => {
    const live = path.join(root, 'db', 'notes.db');
    bigNotes(live);
    const first = await runBackup(loadConfig(root), { now: hour(10) });
    touch(live, "UPDATE notes SET title = 'a' WHERE id = 7");
    const second = await runBackup(loadConfig(root), { now: hour(11) });
    expect(second.kind).toBe('delta');
    // Both archives were checksummed as they were written, and the files are as they were then.
    const plan = await planChain(loadConfig(root), hour(12)(), { full: false });
    expect(plan).toMatchObject({ kind: 'delta', base: second.snapshot_id, reread: 0 });
    expect(plan.verified.map((v) => v.id)).toEqual([first.snapshot_id, second.snapshot_id]);
    // The same bytes written again: the file changed, so it is read again (and found whole).
    const archive = snapshot(first.snapshot_id).archivePath;
    fs.writeFileSync(archive, fs.readFileSync(archive));
    expect(await planChain(loadConfig(root), hour(12)(), { full: false })).toMatchObject({ kind: 'delta', reread: 1 });
    const third = await runBackup(loadConfig(root), { now: hour(12) });
    expect(third.kind).toBe('delta');
    expect(await planChain(loadConfig(root), hour(13)(), { full: false })).toMatchObject({ kind: 'delta', reread: 0 });
    // Damage that leaves the file's inode, size and times as they were (bit rot) is found by
    // `check --read-data`; the next snapshot then reads that archive again and is a full one.
    const mtimeNs = fs.statSync(archive, { bigint: true }).mtimeNs;
    const bytes = fs.readFileSync(archive);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    const fd = fs.openSync(archive, 'r+');
    fs.writeSync(fd, bytes, 0, bytes.length, 0);
    fs.closeSync(fd);
    // Its modification time put back to the nanosecond, as bit rot would leave it.
    execFileSync('touch', ['-m', '-d', `@${mtimeNs / 1_000_000_000n}.${String(mtimeNs % 1_000_000_000n).padStart(9, '0')}`, archive]);
    expect(fs.statSync(archive, { bigint: true }).mtimeNs).toBe(mtimeNs);
    expect(await planChain(loadConfig(root), hour(13)(), { full: false })).toMatchObject({ kind: 'delta', reread: 0 });
    const check = await runCheck(loadConfig(root), { remote: false, readData: { kind: 'all' } });
    expect(check.failed.map((f) => f.id)).toContain(first.snapshot_id);
    const fourth = await runBackup(loadConfig(root), { now: hour(13) });
    expect(fourth).toMatchObject({ kind: 'full', full_because: expect.stringMatching(/damaged/) });
  });

  it('a base without page-hash indexes (an older wb-backup, or downloaded) gives a full one', async () => {
    const live = path.join(root, 'db', 'notes.db');
    bigNotes(live);
    const first = await runBackup(loadConfig(root), { now: hour(10) });
    fs.rmSync(snapshot(first.snapshot_id).pagesPath);
    const second = await runBackup(loadConfig(root), { now: hour(11) });
    expect(second).toMatchObject({ kind: 'full', full_because: expect.stringMatching(/no page-hash indexes/) });
    fs.writeFileSync(snapshot(second.snapshot_id).pagesPath, 'garbage');
    const third = await runBackup(loadConfig(root), { now: hour(12) });
    expect(third).toMatchObject({ kind: 'full', full_because: expect.stringMatching(/damaged/) });
  });

  it('a vacuumed, replaced or re-paged database is stored whole, with the reason, while the others stay deltas', async () => {
    const a = path.join(root, 'db', 'a.db');
    const b = path.join(root, 'db', 'b.db');
    const c = path.join(root, 'db', 'c.db');
    const d = path.join(root, 'db', 'd.db');
    for (const f of [a, b, c, d]) bigNotes(f);
    await runBackup(loadConfig(root), { now: hour(10) });
    // a: deleting most rows then VACUUM rewrites the file
    touch(a, 'DELETE FROM notes WHERE id % 2 = 0; VACUUM;');
    // b: replaced by another file (a new inode) with the same content shape
    const other = path.join(root, 'other.db');
    bigNotes(other, 2000);
    for (const suffix of ['-wal', '-shm']) fs.rmSync(b + suffix, { force: true });
    fs.renameSync(other, b);
    // c: a new page size (VACUUM in rollback mode applies it)
    touch(c, 'PRAGMA journal_mode = DELETE; PRAGMA page_size = 8192; VACUUM;');
    // d: one small change
    touch(d, "UPDATE notes SET title = 'x' WHERE id = 3");
    const second = await runBackup(loadConfig(root), { now: hour(11) });
    expect(second.kind).toBe('delta');
    const byName = new Map(second.databases.map((x) => [x.name, x]));
    expect(byName.get('a')).toMatchObject({ stored: 'image', whole_because: expect.stringMatching(/more than half|rewritten/) });
    expect(byName.get('b')).toMatchObject({ stored: 'image', whole_because: expect.stringMatching(/replaced/) });
    expect(byName.get('c')).toMatchObject({ stored: 'image', whole_because: expect.stringMatching(/page size changed from 4096 to 8192/) });
    expect(byName.get('d')).toMatchObject({ stored: 'delta' });
  });

  it('with incremental snapshots turned off every snapshot is a full one', async () => {
    bigNotes(path.join(root, 'db', 'notes.db'));
    writeConfigFile(root, { backup: { incremental: { enabled: false } } });
    await runBackup(loadConfig(root), { now: hour(10) });
    const second = await runBackup(loadConfig(root), { now: hour(11) });
    expect(second).toMatchObject({ kind: 'full', full_because: expect.stringMatching(/turned off/) });
    expect(second.databases[0]!.stored).toBe('image');
  });

  it('a full is taken once the chain is as long as max_deltas allows', async () => {
    const live = path.join(root, 'db', 'notes.db');
    bigNotes(live);
    writeConfigFile(root, { backup: { incremental: { max_deltas: 2 } } });
    const kinds: string[] = [];
    for (let h = 0; h < 5; h++) {
      touch(live, `UPDATE notes SET title = 'h${h}' WHERE id = ${h + 1}`);
      kinds.push((await runBackup(loadConfig(root), { now: hour(h) })).kind);
    }
    expect(kinds).toEqual(['full', 'delta', 'delta', 'full', 'delta']);
  });
});
