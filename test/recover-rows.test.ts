import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { runRecover, type RecoverOptions } from '../src/recover/recover.js';
import { CLI, rmrf, tempRoot } from './support/fixtures.js';
import { exactRows, filesState, makeTasksDb, project3Rows, withTasksDb } from './support/tasks-db.js';

let root: string;
const live = () => path.join(root, 'db', 'tasks.db');
const yes = async () => ({ granted: true as const });
const hour = (h: number) => () => new Date(Date.UTC(2026, 10, 29, h, 0, 0));

let snapshotId: string;
let lost: ReturnType<typeof project3Rows>;
beforeEach(async () => {
  root = tempRoot('wb-recover-');
  makeTasksDb(live(), 600);
  snapshotId = (await runBackup(loadConfig(root), { now: hour(10) })).snapshot_id;
  lost = project3Rows(live());
  withTasksDb(live(), (db) => db.prepare('DELETE FROM tasks WHERE project_id = 3').run());
  expect(project3Rows(live()).tasks).toEqual([]);
  expect(project3Rows(live()).notes).toEqual([]);
});
afterEach(() => rmrf(root));

const recover = (o: Partial<RecoverOptions>) => runRecover(loadConfig(root), { snapshotId, database: 'tasks', table: 'tasks', where: 'project_id = 3', ...o });

async function refusal(p: Promise<unknown>): Promise<WbError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WbError);
  return err as WbError;
}

describe('recovering rows deleted by mistake', () => {
  it('a dry run shows the deleted tasks, the notes the cascade removed, and changes no byte or mtime of the live files', async () => {
    const before = filesState(live());
    const dry = await recover({ dryRun: true });
    expect(filesState(live())).toEqual(before);
    expect(dry.plan.chosen).toBe(60);
    expect(dry.plan.counts.to_insert).toBe(60);
    expect(dry.plan.children_missing.count).toBe(120); // 60 tasks (even ids) × 2 notes
    expect(dry.plan.children_missing.sample[0]).toMatchObject({ table: 'task_notes', child_of: { table: 'tasks' }, on_delete: 'CASCADE' });
    expect(dry.plan.blocked_by).toEqual([]);
    expect(dry.confirm_token).toMatch(/^wbc_recover_rows_/);
    expect(listLocalSnapshots(root)).toHaveLength(1);

    const withChildren = await recover({ dryRun: true, include: ['children'] });
    expect(withChildren.plan.counts).toMatchObject({ to_insert: 180, children_included: 120 });
    expect(filesState(live())).toEqual(before);
  });

  it('a dry run changes no byte or mtime of the live files in any state: a -wal not folded in (no -shm), a hot -journal', async () => {
    // Committed only in the -wal, with no -shm: a connection to the live file would fold it in on close.
    const scratch = path.join(root, 'scratch');
    fs.mkdirSync(scratch);
    const copy = path.join(scratch, 'tasks.db');
    fs.copyFileSync(live(), copy);
    let db = new Database(copy);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.pragma('foreign_keys = OFF');
    db.exec('DELETE FROM projects WHERE id = 3');
    fs.copyFileSync(copy, live());
    fs.copyFileSync(`${copy}-wal`, `${live()}-wal`);
    fs.rmSync(`${live()}-shm`, { force: true });
    let before = filesState(live());
    const walDry = await recover({ dryRun: true });
    expect(filesState(live())).toEqual(before);
    expect(walDry.plan.parents_missing.count, 'the plan read what the -wal holds').toBe(1);
    db.close();

    // A hot journal (a writer that crashed mid-transaction, its pages spilled to the file).
    fs.rmSync(`${live()}-wal`, { force: true });
    fs.rmSync(copy);
    fs.rmSync(`${copy}-wal`, { force: true });
    fs.rmSync(`${copy}-shm`, { force: true });
    withTasksDb(live(), (x) => x.pragma('journal_mode = DELETE'));
    fs.copyFileSync(live(), copy);
    db = new Database(copy);
    db.pragma('cache_size = 2');
    db.exec('BEGIN');
    db.exec('DELETE FROM task_notes; DELETE FROM projects WHERE id >= 3');
    fs.copyFileSync(copy, live());
    fs.copyFileSync(`${copy}-journal`, `${live()}-journal`);
    db.exec('ROLLBACK');
    db.close();
    before = filesState(live());
    expect(before['-journal']).not.toBeNull();
    const hotDry = await recover({ dryRun: true, include: ['children'] });
    expect(filesState(live())).toEqual(before);
    // The copy rolled the unfinished write back, as the program's next open will.
    expect(hotDry.plan.counts).toMatchObject({ to_insert: 180, parents_included: 0 });
    expect(hotDry.plan.parents_missing.count).toBe(0);
  });

  it('puts back the tasks and their notes byte for byte, keeps later changes, and names the safety snapshot', async () => {
    // Good changes after the mistake.
    withTasksDb(live(), (db) => {
      db.prepare("INSERT INTO tasks(id, project_id, title) VALUES (9001, 4, 'added after')").run();
      db.prepare("UPDATE tasks SET title = 'edited after' WHERE id = 5").run();
    });
    const later = exactRows(live(), 'SELECT * FROM tasks WHERE id IN (5, 9001) ORDER BY id');
    const done = await recover({ include: ['children'], consent: yes, now: hour(12) });
    expect(done.applied).toBe(true);
    expect(project3Rows(live())).toEqual(lost);
    expect(exactRows(live(), 'SELECT * FROM tasks WHERE id IN (5, 9001) ORDER BY id')).toEqual(later);
    expect(exactRows(live(), 'PRAGMA foreign_key_check')).toEqual([]);
    expect(done.safety_snapshot_id).toMatch(/manual/);
    expect(listLocalSnapshots(root).map((s) => s.id)).toContain(done.safety_snapshot_id);
    const record = JSON.parse(fs.readFileSync(path.join(root, done.record!), 'utf8')) as { snapshot_id: string; safety_snapshot_id: string; rows: unknown[] };
    expect(record).toMatchObject({ snapshot_id: snapshotId, safety_snapshot_id: done.safety_snapshot_id });
    expect(record.rows).toHaveLength(180);

    // Again: everything is already there, nothing is written, no new snapshot.
    const again = await recover({ include: ['children'], consent: yes });
    expect(again.applied).toBe(false);
    expect(again.plan.counts).toMatchObject({ to_insert: 0, already_there: 60, children_included: 0 });
    expect(again.safety_snapshot_id).toBeNull();
  });

  it('refuses a key that exists live with other values unless on_conflict says how', async () => {
    withTasksDb(live(), (db) => db.prepare("INSERT INTO tasks(id, project_id, title) VALUES (2, 1, 'reused id')").run());
    const before = filesState(live());
    const dry = await recover({ dryRun: true, keys: [2, 12], where: undefined });
    expect(dry.plan.counts).toMatchObject({ conflicts: 1, to_insert: 1 });
    expect(dry.plan.conflicts.sample[0]).toMatchObject({ key: 2, live: { title: 'reused id', project_id: 1 }, snapshot: { project_id: 3 } });
    expect(dry.confirm_token).toBeUndefined();
    const err = await refusal(recover({ keys: [2, 12], where: undefined, consent: yes }));
    expect(err.code).toBe('restore_refused');
    expect(describeError(err)).toMatch(/conflicts.*on_conflict "keep_live".*"use_snapshot"/);
    expect(filesState(live())).toEqual(before);

    const kept = await recover({ keys: [2, 12], where: undefined, onConflict: 'keep_live', consent: yes });
    expect(kept.plan.counts).toMatchObject({ kept_live: 1, to_insert: 1 });
    expect(exactRows(live(), 'SELECT title FROM tasks WHERE id = 2')).toEqual([['text:reused id']]);
    expect(exactRows(live(), 'SELECT * FROM tasks WHERE id = 12')).toEqual(lost.tasks.filter((t) => t[0] === 'int:12'));
    const over = await recover({ keys: [2], where: undefined, onConflict: 'use_snapshot', consent: yes });
    expect(over.plan.counts.to_update).toBe(1);
    expect(exactRows(live(), 'SELECT * FROM tasks WHERE id = 2')).toEqual(lost.tasks.filter((t) => t[0] === 'int:2'));
  });

  it('refuses rows whose parent is gone live unless the parent is included', async () => {
    withTasksDb(live(), (db) => db.prepare('DELETE FROM projects WHERE id = 3').run());
    const before = filesState(live());
    const dry = await recover({ dryRun: true });
    expect(dry.plan.parents_missing).toMatchObject({ count: 1, not_in_snapshot: 0 });
    expect(dry.plan.parents_missing.sample[0]).toMatchObject({ table: 'projects', values: { id: 3 }, in_snapshot: true });
    expect(dry.plan.blocked_by.join(' ')).toMatch(/include \["parents"\]/);
    expect(dry.confirm_token).toBeUndefined();
    const err = await refusal(recover({ consent: yes }));
    expect(err.code).toBe('restore_refused');
    expect(filesState(live())).toEqual(before);

    const done = await recover({ include: ['parents', 'children'], consent: yes });
    expect(done.plan.counts).toMatchObject({ parents_included: 1, to_insert: 181 });
    expect(project3Rows(live())).toEqual(lost);
    expect(exactRows(live(), 'SELECT * FROM projects WHERE id = 3')).toEqual([['int:3', 'text:project 3']]);
  });

  it('refuses a where that is not a plain expression, before reading anything', async () => {
    for (const where of ['1; DROP TABLE tasks', 'id IN (SELECT id FROM projects)', "load_extension('x')", '1) OR (1', 'id = 1 -- comment', "1 UNION SELECT sql FROM sqlite_schema", "\"load_extension\"('x')", 'length(zeroblob(900000000)) > 0', "id IN (2, 12) AND readfile('/etc/passwd')"]) {
      const err = await refusal(recover({ dryRun: true, where }));
      expect(err.code, where).toBe('invalid_input');
      expect(describeError(err), where).toMatch(/where expression was refused/);
    }
    const plain = await recover({ dryRun: true, where: "id IN (2, 12) AND lower(title) LIKE 'task%' AND coalesce(score, 0) >= 0" });
    expect(plain.plan.chosen).toBe(2);
    const unknown = await refusal(recover({ dryRun: true, where: 'no_such_column = 1' }));
    expect(describeError(unknown)).toMatch(/cannot be evaluated.*no such column/);
  });

  it('puts back rows of a table without a primary key under their rowids, and of a composite key', async () => {
    withTasksDb(live(), (db) => {
      db.exec("CREATE TABLE events (msg TEXT, at INTEGER); CREATE TABLE tags (task_id INTEGER NOT NULL, tag TEXT NOT NULL, weight REAL, PRIMARY KEY (task_id, tag)) WITHOUT ROWID");
      const e = db.prepare('INSERT INTO events(rowid, msg, at) VALUES (?, ?, ?)');
      const t = db.prepare('INSERT INTO tags VALUES (?, ?, ?)');
      for (let i = 1; i <= 20; i++) {
        e.run(i * 10, `event ${i}`, 1_700_000_000_000 + i);
        t.run(i, i % 2 ? 'odd' : 'even', i / 3);
      }
    });
    const snap = (await runBackup(loadConfig(root), { now: hour(11) })).snapshot_id;
    const events = exactRows(live(), 'SELECT rowid, * FROM events ORDER BY rowid');
    const tags = exactRows(live(), 'SELECT * FROM tags ORDER BY task_id, tag');
    withTasksDb(live(), (db) => db.exec("DELETE FROM events WHERE at % 2 = 0; DELETE FROM tags WHERE tag = 'even'"));
    const byRowid = await runRecover(loadConfig(root), { snapshotId: snap, database: 'tasks', table: 'events', keys: [20, 30, 40], consent: yes });
    expect(byRowid.plan).toMatchObject({ key_columns: ['rowid'], chosen: 3, counts: { to_insert: 2, already_there: 1 } });
    const byWhere = await runRecover(loadConfig(root), { snapshotId: snap, database: 'tasks', table: 'events', where: 'at % 2 = 0', consent: yes });
    expect(byWhere.plan.counts).toMatchObject({ to_insert: 8, already_there: 2 });
    expect(exactRows(live(), 'SELECT rowid, * FROM events ORDER BY rowid')).toEqual(events);
    const composite = await runRecover(loadConfig(root), { snapshotId: snap, database: 'tasks', table: 'tags', keys: [[2, 'even'], [4, 'even'], [3, 'even']], consent: yes });
    expect(composite.plan).toMatchObject({ key_columns: ['task_id', 'tag'], chosen: 2, keys_not_in_snapshot: [[3, 'even']], counts: { to_insert: 2 } });
    await runRecover(loadConfig(root), { snapshotId: snap, database: 'tasks', table: 'tags', where: "tag = 'even'", consent: yes });
    expect(exactRows(live(), 'SELECT * FROM tags ORDER BY task_id, tag')).toEqual(tags);
    const wrongShape = await refusal(runRecover(loadConfig(root), { snapshotId: snap, database: 'tasks', table: 'tags', keys: [2], dryRun: true }));
    expect(describeError(wrongShape)).toMatch(/has 2 value\(s\) \(task_id, tag\); got 1/);
  });

  it('a confirm token works once, only for its request, and not after the live database changed', async () => {
    const dry = await recover({ dryRun: true, include: ['children'] });
    const forged = await refusal(recover({ include: ['children'], confirmToken: `${dry.confirm_token!}x` }));
    expect(forged.code).toBe('consent_required');
    const other = await refusal(recover({ include: [], confirmToken: dry.confirm_token! }));
    expect(describeError(other)).toMatch(/different request/);
    // That use consumed nothing of the right request? A token is consumed by its first presentation.
    const dry2 = await recover({ dryRun: true, include: ['children'] });
    withTasksDb(live(), (db) => db.prepare("UPDATE tasks SET title = 'changed' WHERE id = 1").run());
    const stale = await refusal(recover({ include: ['children'], confirmToken: dry2.confirm_token! }));
    expect(describeError(stale)).toMatch(/changed since the dry run/);
    const dry3 = await recover({ dryRun: true, include: ['children'] });
    const ok = await recover({ include: ['children'], confirmToken: dry3.confirm_token!, now: hour(13) });
    expect(ok.applied).toBe(true);
    const replay = await refusal(recover({ include: ['children'], confirmToken: dry3.confirm_token! }));
    expect(describeError(replay)).toMatch(/already used/);
    expect(project3Rows(live())).toEqual(lost);
  });
});

describe('wb-backup recover (the CLI)', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8' });

  it('shows the plan with --dry-run, refuses without a terminal or --yes, recovers with --yes and names the undo', () => {
    const before = filesState(live());
    const dry = cli('recover', snapshotId, '--db', 'tasks', '--table', 'tasks', '--where', 'project_id = 3', '--include', 'children', '--dry-run');
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry run \(nothing changed\): would recover rows of tasks\.tasks/);
    expect(dry.stdout).toMatch(/60 row\(s\) chosen.*180 to insert/);
    expect(filesState(live())).toEqual(before);

    const refused = cli('recover', snapshotId, '--db', 'tasks', '--table', 'tasks', '--where', 'project_id = 3', '--include', 'children');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/not recovered: there is no terminal to ask on; pass --yes/);
    expect(filesState(live())).toEqual(before);

    const keys = cli('recover', snapshotId, '--db', 'tasks', '--table', 'tasks', '--key', '2', '--key', '12', '--include', 'children', '--yes', '--json');
    expect(keys.status, keys.stderr).toBe(0);
    const result = JSON.parse(keys.stdout) as { applied: boolean; plan: { counts: { to_insert: number } }; safety_snapshot_id: string };
    expect(result).toMatchObject({ applied: true, plan: { counts: { to_insert: 6 } } });
    expect(exactRows(live(), 'SELECT * FROM tasks WHERE id IN (2, 12) ORDER BY id')).toEqual(lost.tasks.filter((t) => t[0] === 'int:2' || t[0] === 'int:12'));

    const rest = cli('recover', snapshotId, '--db', 'tasks', '--table', 'tasks', '--where', 'project_id = 3', '--include', 'children', '--yes');
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.stdout).toMatch(/recovered rows of tasks\.tasks.*\n.*174 to insert, 0 to overwrite.*2 already there/);
    expect(rest.stdout).toMatch(/undo with: wb-backup restore snap-\S+ --db tasks/);
    expect(project3Rows(live())).toEqual(lost);

    const bad = cli('recover', snapshotId, '--db', 'tasks', '--table', 'tasks', '--key', '2', '--where', 'id = 2');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--key or with --where/);
  });
});
