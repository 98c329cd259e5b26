// "Which rows did that DELETE take, and when?": data_snapshot_diff / `wb-backup diff` compare two
// snapshots (or a snapshot and the live data) table by table, by key, without changing anything.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { rootLayout } from '../src/root/paths.js';
import { snapshotDiff } from '../src/inspect/diff.js';
import { cachedSnapshotDatabase } from '../src/inspect/cache.js';
import { CLI, rmrf, tempRoot } from './support/fixtures.js';

let root: string;
const tasksFile = () => path.join(root, 'db', 'tasks.db');

beforeEach(() => {
  root = tempRoot('wb-inspect-diff-');
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

function seed(n: number): void {
  writeTasks((db) => {
    db.exec(`
      CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
      CREATE TABLE tasks (id INTEGER PRIMARY KEY, project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE, title TEXT, body TEXT);
      CREATE TABLE tags (task_id INTEGER, tag TEXT, PRIMARY KEY (task_id, tag)) WITHOUT ROWID;
      CREATE TABLE log (line TEXT);
      CREATE VIRTUAL TABLE tasks_fts USING fts5(title);
    `);
    db.transaction(() => {
      for (let p = 1; p <= 5; p++) db.prepare('INSERT INTO projects VALUES (?, ?)').run(p, `project ${p}`);
      for (let i = 1; i <= n; i++) {
        db.prepare('INSERT INTO tasks VALUES (?, ?, ?, ?)').run(i, (i % 5) + 1, `task ${i}`, i === 7 ? 'x'.repeat(5000) : `body ${i}`);
        db.prepare('INSERT INTO tags VALUES (?, ?)').run(i, i % 2 ? 'odd' : 'even');
        db.prepare('INSERT INTO tasks_fts(rowid, title) VALUES (?, ?)').run(i, `task ${i}`);
      }
      for (let i = 0; i < 10; i++) db.prepare('INSERT INTO log VALUES (?)').run(`line ${i}`);
    })();
  });
}

async function snapshot(): Promise<string> {
  const r = await runBackup(loadConfig(root), { remote: null, manual: true });
  return r.snapshot_id;
}

describe('diff of two snapshots', () => {
  it('after "DELETE FROM tasks WHERE project_id = 3" the diff counts exactly the deleted tasks, shows them with their values, and pages through the rest', async () => {
    seed(500);
    const before = await snapshot();
    writeTasks((db) => {
      db.prepare('DELETE FROM tasks WHERE project_id = 3').run();
      db.prepare("UPDATE tasks SET title = 'renamed' WHERE id = 1").run();
      db.prepare("INSERT INTO tasks VALUES (1000, 1, 'new one', 'b')").run();
      db.prepare("DELETE FROM tags WHERE task_id = 4 AND tag = 'even'").run();
      db.prepare("INSERT INTO log VALUES ('later')").run();
      db.prepare('DELETE FROM tasks_fts WHERE rowid = 2').run();
    });
    const after = await snapshot();
    const mtimeBefore = fs.statSync(tasksFile()).mtimeMs;

    const d = await snapshotDiff(loadConfig(root), { from: before, to: after, sample: 30 });
    expect(d.from).toBe(before);
    expect(d.to).toBe(after);
    const db = d.databases.find((x) => x.name === 'tasks')!;
    const tasks = db.tables.find((t) => t.table === 'tasks')!;
    expect(tasks).toMatchObject({ key: ['id'], compared: true, rows_from: 500, rows_to: 401, added: 1, deleted: 100, changed: 1 });
    expect(tasks.sample).toHaveLength(30);
    expect(tasks.sample[0]).toMatchObject({ change: 'changed', key: { id: 1 }, before: { title: 'task 1' }, after: { title: 'renamed' }, columns_changed: ['title'] });
    expect(tasks.sample[1]).toMatchObject({ change: 'deleted', key: { id: 2 }, before: { id: 2, project_id: 3, title: 'task 2', body: 'body 2' } });
    expect(tasks.sample[1]!.after).toBeUndefined();
    expect(tasks.next_rows_cursor).toEqual(expect.any(String));
    // WITHOUT ROWID by its primary key; a table without one by rowid.
    expect(db.tables.find((t) => t.table === 'tags')).toMatchObject({ key: ['task_id', 'tag'], deleted: 1, added: 0, sample: [expect.objectContaining({ key: { task_id: 4, tag: 'even' } })] });
    expect(db.tables.find((t) => t.table === 'log')).toMatchObject({ key: ['rowid'], added: 1, deleted: 0, changed: 0 });
    // The full-text index is compared by its documents; its shadow tables never show.
    expect(db.tables.find((t) => t.table === 'tasks_fts')).toMatchObject({ kind: 'virtual', key: ['rowid'], deleted: 1 });
    expect(db.tables.map((t) => t.table).filter((t) => /_(data|idx|content|docsize|config)$/.test(t))).toEqual([]);
    expect(db.counts.tables_same).toBe(1); // projects
    expect(d.totals).toMatchObject({ rows_deleted: 102, rows_added: 2, rows_changed: 1, schema_changes: 0 });

    // Paging: every differing row exactly once, in key order, until the cursor is null.
    const seen = tasks.sample.map((r) => r.key.id);
    let cursor = tasks.next_rows_cursor;
    while (cursor) {
      const page = await snapshotDiff(loadConfig(root), { from: before, to: after, sample: 30, rowsCursor: cursor });
      const t = page.databases[0]!.tables[0]!;
      expect(t.added).toBeNull();
      seen.push(...t.sample.map((r) => r.key.id));
      cursor = t.next_rows_cursor;
    }
    expect(seen).toHaveLength(102);
    expect(new Set(seen).size).toBe(102);
    expect(seen).toEqual([...seen].sort((a, b) => Number(a) - Number(b)));
    expect(fs.statSync(tasksFile()).mtimeMs).toBe(mtimeBefore);
    // A cursor that was not returned by a diff is refused as such, not a crash.
    const forged = Buffer.from(JSON.stringify({ v: 1, from: before, to: after, db: 'tasks', table: 'tasks', key: [{ x: 1 }] })).toString('base64url');
    await expect(snapshotDiff(loadConfig(root), { from: 'x', to: 'y', rowsCursor: forged })).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringMatching(/rows_cursor is not one data_snapshot_diff returned/) });
  });

  it('a rows_cursor passed with other from/to/database/table than its diff is refused, not silently answering the cursor\'s diff', async () => {
    seed(200);
    const before = await snapshot();
    writeTasks((db) => db.prepare('DELETE FROM tasks WHERE project_id = 3').run());
    const middle = await snapshot();
    writeTasks((db) => db.prepare('DELETE FROM tasks WHERE project_id = 2').run());
    const after = await snapshot();
    const d = await snapshotDiff(loadConfig(root), { from: before, to: middle, sample: 5 });
    const cursor = d.databases[0]!.tables.find((t) => t.table === 'tasks')!.next_rows_cursor!;
    expect(cursor).toEqual(expect.any(String));
    for (const [other, named] of [
      [{ from: before, to: after }, `to ${middle}`],
      [{ from: middle, to: after }, `from ${before}`],
      [{ from: before, to: middle, databases: ['other'] }, 'database tasks'],
      [{ from: before, to: middle, tables: ['tags'] }, 'table tasks'],
    ] as Array<[{ from: string; to: string; databases?: string[]; tables?: string[] }, string]>) {
      await expect(snapshotDiff(loadConfig(root), { ...other, rowsCursor: cursor })).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringContaining(`belongs to another diff (${named}`), hint: expect.stringContaining('without rows_cursor') });
    }
    // The same cursor with its own diff's inputs ("latest" naming the same snapshot) still pages.
    const page = await snapshotDiff(loadConfig(root), { from: before, to: middle, tables: ['TASKS'], rowsCursor: cursor });
    expect(page.databases[0]!.tables[0]!.sample[0]!.change).toBe('deleted');
    const d2 = await snapshotDiff(loadConfig(root), { from: middle, to: 'latest', sample: 5 });
    const c2 = d2.databases[0]!.tables.find((t) => t.table === 'tasks')!.next_rows_cursor!;
    const page2 = await snapshotDiff(loadConfig(root), { from: middle, to: 'latest', rowsCursor: c2 });
    expect(page2.to).toBe(after);
  });

  it('an edit of one value in place (same length, same pages) is still found as a changed row', async () => {
    seed(300);
    const before = await snapshot();
    writeTasks((db) => db.prepare("UPDATE tasks SET title = 'TASK 150' WHERE id = 150").run());
    const after = await snapshot();
    const d = await snapshotDiff(loadConfig(root), { from: before, to: after });
    const db = d.databases[0]!;
    expect(db.tables).toEqual([expect.objectContaining({ table: 'tasks', added: 0, deleted: 0, changed: 1, sample: [expect.objectContaining({ key: { id: 150 }, columns_changed: ['title'] })] })]);
    // Every other table (the index of tasks_fts included) is the same and only counted.
    expect(db.counts.tables_same).toBe(4);
  });

  it('a long value in a sample is cut and says its length', async () => {
    seed(10);
    const before = await snapshot();
    writeTasks((db) => db.prepare('DELETE FROM tasks WHERE id = 7').run());
    const d = await snapshotDiff(loadConfig(root), { from: before, to: 'live', tables: ['tasks'] });
    const row = d.databases[0]!.tables[0]!.sample[0]!;
    expect(row.before!.body).toEqual({ text_prefix: 'x'.repeat(200), length: 5000 });
    expect(JSON.stringify(d).length).toBeLessThan(5000);
  });

  it('schema changes are listed: a table added, a column added, an index added and removed', async () => {
    seed(5);
    writeTasks((db) => db.exec('CREATE INDEX tasks_by_title ON tasks(title)'));
    const before = await snapshot();
    writeTasks((db) => db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); ALTER TABLE tasks ADD COLUMN due TEXT; DROP INDEX tasks_by_title; CREATE INDEX tasks_by_project ON tasks(project_id);'));
    const after = await snapshot();
    const d = await snapshotDiff(loadConfig(root), { from: before, to: after });
    const s = d.databases[0]!.schema!;
    expect(s.tables_added).toEqual(['notes']);
    expect(s.tables_changed).toEqual([expect.objectContaining({ table: 'tasks', columns_added: ['due'], columns_removed: [], key_changed: false, sql_changed: true })]);
    expect(s.indexes_added).toEqual(['tasks_by_project']);
    expect(s.indexes_removed).toEqual(['tasks_by_title']);
    // Rows of a table that gained a column are still compared, on the columns both sides have.
    expect(d.databases[0]!.tables.find((t) => t.table === 'tasks')).toBeUndefined();
  });

  it('diff against "live" reads a copy of the live database: its file is not written (same size, mtime and inode)', async () => {
    seed(50);
    const before = await snapshot();
    writeTasks((db) => db.prepare('DELETE FROM tasks WHERE id <= 5').run());
    const st = fs.statSync(tasksFile());
    const bytes = fs.readFileSync(tasksFile());
    const d = await snapshotDiff(loadConfig(root), { from: before, to: 'live' });
    expect(d.to).toBe('live');
    expect(d.databases[0]!.tables.find((t) => t.table === 'tasks')).toMatchObject({ deleted: 5, added: 0 });
    const st2 = fs.statSync(tasksFile());
    expect([st2.ino, st2.size, st2.mtimeMs]).toEqual([st.ino, st.size, st.mtimeMs]);
    expect(fs.readFileSync(tasksFile()).equals(bytes)).toBe(true);
    // The hot copy is gone afterwards; only the rebuilt snapshot stays in the cache.
    const cacheParent = path.dirname(rootLayout(root).snapshotCacheDir);
    expect(fs.readdirSync(cacheParent).filter((n) => n.startsWith('live-'))).toEqual([]);
  });
});

describe('the rebuilt-snapshot cache', () => {
  it('a second diff reuses the rebuilt copy, and a tampered copy is rebuilt rather than trusted', async () => {
    seed(20);
    const id = await snapshot();
    const config = loadConfig(root);
    const first = await cachedSnapshotDatabase(config, id, 'tasks');
    expect(first.rebuilt).toBe(true);
    const again = await cachedSnapshotDatabase(config, 'latest', 'tasks');
    expect(again).toMatchObject({ rebuilt: false, file: first.file, snapshot_id: id });
    // A copy whose recorded checksum no longer matches the manifest is not reused.
    const meta = path.join(path.dirname(first.file), 'meta.json');
    fs.writeFileSync(meta, JSON.stringify({ ...JSON.parse(fs.readFileSync(meta, 'utf8')), sha256: '0'.repeat(64) }));
    const third = await cachedSnapshotDatabase(config, id, 'tasks');
    expect(third.rebuilt).toBe(true);
    expect(JSON.parse(fs.readFileSync(meta, 'utf8')).sha256).toBe(first.sha256);
  });

  it('two diffs at once both succeed and leave one complete copy, no build folders', async () => {
    seed(200);
    const a = await snapshot();
    writeTasks((db) => db.prepare('DELETE FROM tasks WHERE id = 3').run());
    const b = await snapshot();
    const config = loadConfig(root);
    // The rebuild holds the root lock: the second waits its turn, and both end with the same verified copy.
    const both = await Promise.all([cachedSnapshotDatabase(config, a, 'tasks'), cachedSnapshotDatabase(config, a, 'tasks')]);
    expect(both[0].file).toBe(both[1].file);
    expect(both[0].sha256).toBe(both[1].sha256);
    expect(fs.existsSync(both[0].file)).toBe(true);
    const d = await snapshotDiff(config, { from: a, to: b });
    expect(d.totals.rows_deleted).toBe(1);
    const dir = rootLayout(root).snapshotCacheDir;
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('a rebuild killed half way (its build folder left behind) is cleaned up by the next call, which rebuilds', async () => {
    seed(20);
    const id = await snapshot();
    const dir = rootLayout(root).snapshotCacheDir;
    fs.mkdirSync(dir, { recursive: true });
    // A process that has exited: its pid is free, as after a kill -9 mid-build.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const leftover = path.join(dir, `.build-${dead.stdout}-0123456789ab`);
    fs.mkdirSync(leftover);
    fs.writeFileSync(path.join(leftover, 'image.db'), 'half written');
    const c = await cachedSnapshotDatabase(loadConfig(root), id, 'tasks');
    expect(c.rebuilt).toBe(true);
    expect(fs.existsSync(leftover)).toBe(false);
    const check = new Database(c.file, { readonly: true });
    expect(check.prepare('SELECT count(*) FROM tasks').pluck().get()).toBe(20);
    check.close();
  });

  it('the cache stays under its size: the least recently used copy is evicted', async () => {
    seed(20);
    writeTasks((db) => db.exec("CREATE TABLE blobs (b BLOB); INSERT INTO blobs VALUES (randomblob(800000));"));
    const a = await snapshot();
    writeTasks((db) => db.prepare('DELETE FROM tasks WHERE id < 100').run());
    const b = await snapshot();
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'inspect:\n  cache_max_mb: 1\n');
    const config = loadConfig(root);
    const ca = await cachedSnapshotDatabase(config, a, 'tasks');
    expect(fs.existsSync(ca.file)).toBe(true);
    const cb = await cachedSnapshotDatabase(config, b, 'tasks');
    expect(fs.existsSync(cb.file)).toBe(true);
    expect(fs.existsSync(ca.file)).toBe(false);
  });
});

describe('wb-backup diff', () => {
  it('prints the counts and the deleted rows of two snapshots', async () => {
    seed(30);
    const before = await snapshot();
    writeTasks((db) => db.prepare('DELETE FROM tasks WHERE project_id = 3').run());
    const after = await snapshot();
    const text = execFileSync(process.execPath, [CLI, '--root', root, 'diff', before, after, '--db', 'tasks', '--table', 'tasks', '--limit', '2'], { encoding: 'utf8' });
    expect(text).toMatch(/0 added, 6 deleted, 0 changed row\(s\)/);
    expect(text).toMatch(/tasks \(by id\): \+0 -6 ~0 \(30 -> 24 rows\)/);
    expect(text).toMatch(/- \{"id":2\} \{"id":2,"project_id":3,"title":"task 2","body":"body 2"\}/);
    expect(text).toMatch(/… more: --rows-cursor \S+/);
  });
});
