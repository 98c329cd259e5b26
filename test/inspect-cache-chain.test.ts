// "The first diff of two snapshots takes longer than a restore": a snapshot stored as a delta is
// rebuilt into the cache from the cached copy of an earlier snapshot of its chain (plus the later
// deltas) instead of from its archives again. The copy it gives must be the snapshot's exact image.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { rootLayout } from '../src/root/paths.js';
import { snapshotDiff } from '../src/inspect/diff.js';
import { cachedSnapshotDatabase } from '../src/inspect/cache.js';
import { exportDatabase } from '../src/restore/export.js';
import { hashFile } from '../src/core/hash.js';
import { rmrf, tempRoot } from './support/fixtures.js';

let root: string;
const tasksFile = () => path.join(root, 'db', 'tasks.db');

beforeEach(() => {
  root = tempRoot('wb-inspect-cache-chain-');
  fs.mkdirSync(path.join(root, 'db'), { recursive: true });
});
afterEach(() => rmrf(root));

function writeTasks(fn: (db: Database.Database) => void): void {
  const db = new Database(tasksFile());
  db.pragma('journal_mode = WAL');
  try {
    fn(db);
  } finally {
    db.close();
  }
}

async function snapshot(): Promise<string> {
  const r = await runBackup(loadConfig(root), { remote: null, manual: true });
  return r.snapshot_id;
}

/** Three snapshots of one chain: A (the image), B and C (deltas), with deletes, edits and inserts between. */
async function chainOfThree(): Promise<[string, string, string]> {
  writeTasks((db) => {
    db.exec('CREATE TABLE tasks (id INTEGER PRIMARY KEY, project_id INTEGER, title TEXT, body TEXT); CREATE TABLE notes (line TEXT);');
    db.transaction(() => {
      for (let i = 1; i <= 3000; i++) db.prepare('INSERT INTO tasks VALUES (?, ?, ?, ?)').run(i, (i % 5) + 1, `task ${i}`, `body ${i} ${'.'.repeat(i % 200)}`);
      for (let i = 0; i < 50; i++) db.prepare('INSERT INTO notes VALUES (?)').run(`note ${i}`);
    })();
  });
  const a = await snapshot();
  writeTasks((db) => {
    // Small changes (a few pages), so that B and C are deltas on A, not fulls.
    db.prepare('DELETE FROM tasks WHERE project_id = 3 AND id <= 500').run();
    db.prepare("UPDATE tasks SET title = 'renamed' WHERE id % 499 = 0").run();
  });
  const b = await snapshot();
  writeTasks((db) => {
    db.prepare("INSERT INTO tasks VALUES (5000, 1, 'later', 'b')").run();
    db.prepare("INSERT INTO notes VALUES ('later note')").run();
  });
  const c = await snapshot();
  return [a, b, c];
}

const cacheDir = () => rootLayout(root).snapshotCacheDir;

describe('rebuilding a delta from a cached copy of its chain', () => {
  it('a diff between two snapshots of one chain gives the same result when the newer one is rebuilt from the older one\'s cached copy', async () => {
    const [a, , c] = await chainOfThree();
    const config = loadConfig(root);
    // Before: the newer snapshot rebuilt from its archives alone (nothing of its chain cached yet).
    const fromArchives = await cachedSnapshotDatabase(config, c, 'tasks');
    expect(fromArchives).toMatchObject({ rebuilt: true });
    expect(fromArchives.reused_from).toBeUndefined();
    const before = await snapshotDiff(config, { from: a, to: c, sample: 50 });

    fs.rmSync(cacheDir(), { recursive: true, force: true });
    // Now: the diff rebuilds A first, then C from A's cached copy plus the deltas of B and C.
    const after = await snapshotDiff(config, { from: a, to: c, sample: 50 });
    const cached = await cachedSnapshotDatabase(config, c, 'tasks');
    expect(cached.rebuilt).toBe(false);
    expect(cached.sha256).toBe(fromArchives.sha256);

    expect(after).toEqual(before);
    const tasks = after.databases.find((d) => d.name === 'tasks')!.tables.find((t) => t.table === 'tasks')!;
    expect(tasks).toMatchObject({ deleted: 100, added: 1, changed: 6 });
  });

  it('a cache copy built from another cache copy is byte-identical (same sha256) to an export of that snapshot', async () => {
    const [a, b, c] = await chainOfThree();
    const config = loadConfig(root);
    const older = await cachedSnapshotDatabase(config, a, 'tasks');
    const newer = await cachedSnapshotDatabase(config, c, 'tasks');
    expect(newer).toMatchObject({ rebuilt: true, reused_from: a });

    const out = path.join(root, 'exported-c.db');
    const exported = await exportDatabase(config, { snapshotId: c, db: 'tasks', out, remote: null });
    expect(exported).toMatchObject({ stored: 'delta', chain: [a, b, c] });
    expect(exported.reused).toBeUndefined();
    expect((await hashFile(newer.file)).sha256).toBe(exported.sha256);
    expect((await hashFile(out)).sha256).toBe(exported.sha256);
    expect(fs.readFileSync(newer.file).equals(fs.readFileSync(out))).toBe(true);
    // The older copy it started from is left as it was.
    expect((await hashFile(older.file)).sha256).toBe(older.sha256);

    // With B cached as well, C starts from B (the newest cached link) and is still the same image.
    await cachedSnapshotDatabase(config, b, 'tasks');
    fs.rmSync(path.dirname(newer.file), { recursive: true, force: true });
    const fromB = await cachedSnapshotDatabase(config, c, 'tasks');
    expect(fromB).toMatchObject({ rebuilt: true, reused_from: b, sha256: exported.sha256 });
    expect(fs.readFileSync(fromB.file).equals(fs.readFileSync(out))).toBe(true);
  });

  it('a damaged cached copy of the older snapshot is not built upon: the newer one is rebuilt from its archives and is still exact', async () => {
    const [a, , c] = await chainOfThree();
    const config = loadConfig(root);
    const older = await cachedSnapshotDatabase(config, a, 'tasks');
    // Same size, same recorded checksum, other bytes (in every page, so some the deltas do not
    // rewrite): only the rebuilt image's sha256 can tell.
    const fd = fs.openSync(older.file, 'r+');
    for (let page = 1; page < older.bytes / 4096; page++) fs.writeSync(fd, Buffer.alloc(8, 0x5a), 0, 8, page * 4096 + 2000);
    fs.closeSync(fd);

    const newer = await cachedSnapshotDatabase(config, c, 'tasks');
    expect(newer.rebuilt).toBe(true);
    expect(newer.reused_from).toBeUndefined();
    const out = path.join(root, 'exported-c.db');
    const exported = await exportDatabase(config, { snapshotId: c, db: 'tasks', out, remote: null });
    expect(newer.sha256).toBe(exported.sha256);
    expect((await hashFile(newer.file)).sha256).toBe(exported.sha256);
  });
});

describe('rebuilding several databases of a snapshot at once', () => {
  it('the databases a diff will ask for next are rebuilt in the same pass and each is the exact image an export gives', async () => {
    await chainOfThree();
    const notes = new Database(path.join(root, 'db', 'notes.db'));
    notes.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('one'), ('two');");
    notes.close();
    const a = await snapshot();
    const n2 = new Database(path.join(root, 'db', 'notes.db'));
    n2.exec("INSERT INTO notes (body) VALUES ('three')");
    n2.close();
    const b = await snapshot();
    const config = loadConfig(root);

    const tasksA = await cachedSnapshotDatabase(config, a, 'tasks', { alongWith: ['tasks', 'notes', 'not-in-this-snapshot'] });
    expect(tasksA.rebuilt).toBe(true);
    const notesA = await cachedSnapshotDatabase(config, a, 'notes');
    expect(notesA.rebuilt).toBe(false);
    const notesB = await cachedSnapshotDatabase(config, b, 'notes', { alongWith: ['tasks', 'notes'] });
    expect(notesB.rebuilt).toBe(true);
    const tasksB = await cachedSnapshotDatabase(config, b, 'tasks');
    expect(tasksB.rebuilt).toBe(false);

    for (const [id, c] of [[a, tasksA], [a, notesA], [b, notesB], [b, tasksB]] as const) {
      const out = path.join(root, `export-${c.db}-${id}.db`);
      const exported = await exportDatabase(config, { snapshotId: id, db: c.db, out, remote: null });
      expect(c.sha256).toBe(exported.sha256);
      expect(fs.readFileSync(c.file).equals(fs.readFileSync(out))).toBe(true);
    }
    const d = await snapshotDiff(config, { from: a, to: b, sample: 10 });
    expect(d.totals).toMatchObject({ rows_added: 1, rows_deleted: 0, rows_changed: 0 });
  });
});
