import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { recordOps, setFault, stopRecordingOps } from '../src/restore/fs-steps.js';
import { exportDatabase } from '../src/restore/export.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { runRecover } from '../src/recover/recover.js';
import { rmrf, tempRoot } from './support/fixtures.js';
import { exactRows, makeTasksDb, project3Rows, withTasksDb } from './support/tasks-db.js';
import { resetTo } from './support/swap-fixtures.js';

/**
 * Faults at every filesystem step of a row recovery (fs-steps: the record's folder, its write,
 * flush, rename and the folder's flush), each with EPERM, EACCES, ENOSPC, EIO and once with every
 * later step failing too, and a constraint failing half-way through the inserts: afterwards the
 * live database holds all the recovered rows or none, and the safety snapshot taken first is
 * intact (it rebuilds, and holds the database as it was before the recovery).
 */
const DIST = path.resolve(__dirname, '..', 'dist', 'src');
const ERRNOS = ['EPERM', 'EACCES', 'ENOSPC', 'EIO'] as const;
const yes = async () => ({ granted: true as const });

let work: string;
let template: string;
let root: string;
const live = () => path.join(root, 'db', 'tasks.db');
let snapshotId: string;
let lost: ReturnType<typeof project3Rows>;
let damaged: string[][];

beforeAll(async () => {
  work = tempRoot('wb-recover-faults-');
  template = path.join(work, 'template');
  root = template;
  makeTasksDb(live(), 300);
  snapshotId = (await runBackup(loadConfig(root), { now: () => new Date(Date.UTC(2026, 10, 29, 9)) })).snapshot_id;
  lost = project3Rows(live());
  withTasksDb(live(), (db) => db.prepare('DELETE FROM tasks WHERE project_id = 3').run());
  damaged = exactRows(live(), 'SELECT * FROM tasks ORDER BY id');
  root = path.join(work, 'root');
});
afterAll(() => {
  setFault(null);
  rmrf(work);
});

const recover = () => runRecover(loadConfig(root), { snapshotId, database: 'tasks', table: 'tasks', where: 'project_id = 3', include: ['children'], consent: yes });

/** All recovered rows, or none; and the safety snapshot (when one was taken) rebuilds to the database before the recovery. */
async function expectAllOrNone(label: string, error: unknown): Promise<'all' | 'none'> {
  const now = project3Rows(live());
  const state = now.tasks.length === 0 && now.notes.length === 0 ? 'none' : 'all';
  if (state === 'all') expect(now, label).toEqual(lost);
  else expect(exactRows(live(), 'SELECT * FROM tasks ORDER BY id'), label).toEqual(damaged);
  expect(exactRows(live(), 'PRAGMA integrity_check'), label).toEqual([['text:ok']]);
  if (error !== null) {
    expect(error, label).toBeInstanceOf(WbError);
    expect(describeError(error), label).toMatch(/Nothing was changed|rolled back/);
    expect(state, label).toBe('none');
  } else expect(state, label).toBe('all');
  const safety = listLocalSnapshots(root).filter((s) => s.id !== snapshotId);
  expect(safety.length, label).toBeLessThanOrEqual(1);
  for (const s of safety) {
    const out = path.join(work, `safety-${Math.random().toString(36).slice(2)}.db`);
    await exportDatabase(loadConfig(root), { snapshotId: s.id, db: 'tasks', out });
    expect(exactRows(out, 'SELECT * FROM tasks ORDER BY id'), `${label}: the safety snapshot holds the database before the recovery`).toEqual(damaged);
    fs.rmSync(out);
  }
  const records = fs.existsSync(path.join(root, 'recovered')) ? fs.readdirSync(path.join(root, 'recovered')).filter((n) => n.endsWith('.json')) : [];
  // A record that could not be removed (every later step failing) is named in the error as not describing a recovery.
  const leftRecord = error !== null && /could not be removed: it describes a recovery that did not happen/.test(describeError(error)) ? 1 : 0;
  expect(records.length, `${label}: a record exactly when the rows are back`).toBe(state === 'all' ? 1 : leftRecord);
  return state;
}

/** The status of the one record under <root>/recovered/. */
function recordStatus(): string {
  const dir = path.join(root, 'recovered');
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  expect(names).toHaveLength(1);
  return (JSON.parse(fs.readFileSync(path.join(dir, names[0]!), 'utf8')) as { status: string }).status;
}

describe('faults during a row recovery', () => {
  it('each filesystem step failing (EPERM, EACCES, ENOSPC, EIO, and every step after it) leaves all the rows or none, and an intact safety snapshot', async () => {
    resetTo(template, root);
    const ops = recordOps();
    try {
      await recover();
    } finally {
      stopRecordingOps();
    }
    const total = ops.length;
    // The record written pending before the commit, then rewritten completed after it.
    expect(ops.map((o) => o.op)).toEqual(['mkdir', 'write', 'fsync', 'rename', 'fsync', 'write', 'fsync', 'rename', 'fsync']);
    const beforeCommit = 5;
    expect(await expectAllOrNone('clean run', null)).toBe('all');
    expect(recordStatus()).toBe('completed');
    const outcomes = { all: 0, none: 0 };
    for (let n = 1; n <= total; n++) {
      for (const [errno, sticky] of [...ERRNOS.map((e) => [e, false] as const), ['EIO', true] as const]) {
        const label = `step ${n} (${ops[n - 1]!.op}) ${errno}${sticky ? '+' : ''}`;
        resetTo(template, root);
        setFault({ op: 'any', n, errno, sticky });
        let error: unknown = null;
        let warnings: string[] = [];
        try {
          warnings = (await recover()).warnings;
        } catch (err) {
          error = err;
        } finally {
          setFault(null);
        }
        outcomes[await expectAllOrNone(label, error)]++;
        if (error) expect(describeError(error), label).toContain(errno);
        if (n > beforeCommit) {
          // After the commit the rows are back whatever fails; the record truthfully stays pending.
          expect(error, label).toBeNull();
          // (the last step flushes the folder after the completed record replaced the pending one)
          expect(recordStatus(), label).toBe(n < total ? 'pending' : 'completed');
          expect(warnings.join(' '), label).toMatch(/could not be durably marked completed.*may still read "pending"/);
        }
      }
    }
    expect(outcomes.none).toBe(beforeCommit * 5);
    expect(outcomes.all).toBe((total - beforeCommit) * 5);
  });

  it('a recovery killed (kill -9) between its record and the commit, or between the commit and marking the record completed, leaves a record saying "pending", which the next recovery resolves from the live rows', async () => {
    // fsync:2 is the folder flush after the pending record is in place (before COMMIT); write:2
    // the completed record's first write (after COMMIT).
    for (const [fault, committed] of [['fsync:2', false], ['write:2', true]] as const) {
      resetTo(template, root);
      const script = `
        const { runRecover } = await import(${JSON.stringify(path.join(DIST, 'recover', 'recover.js'))});
        const { loadConfig } = await import(${JSON.stringify(path.join(DIST, 'root', 'config.js'))});
        await runRecover(loadConfig(${JSON.stringify(root)}), { snapshotId: ${JSON.stringify(snapshotId)}, database: 'tasks', table: 'tasks', where: 'project_id = 3', include: ['children'], consent: async () => ({ granted: true }) });`;
      // A file, not -e: the backup's copy worker inherits the parent's execArgv.
      const scriptFile = path.join(work, 'recover-child.mjs');
      fs.writeFileSync(scriptFile, script);
      const child = spawnSync(process.execPath, [scriptFile], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_FAULT: `${fault}:KILL`, WB_BACKUP_LOG_LEVEL: 'silent' } });
      expect(child.signal, `${fault}: ${child.stderr}`).toBe('SIGKILL');
      const label = `killed before ${fault}`;
      expect(project3Rows(live()), label).toEqual(committed ? lost : { tasks: [], notes: [] });
      const dir = path.join(root, 'recovered');
      const [name] = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
      const read = () => JSON.parse(fs.readFileSync(path.join(dir, name!), 'utf8')) as { status: string; pending_means?: string; resolved?: string };
      // The record does not claim a recovery that may not have happened.
      expect(read(), label).toMatchObject({ status: 'pending', pending_means: expect.stringMatching(/may or may not be live/) });
      // The next recovery looks at the live rows and says what happened.
      await recover().catch(() => null);
      expect(read(), label).toMatchObject({ status: committed ? 'completed' : 'not_applied', resolved: expect.stringMatching(committed ? /had committed/ : /had not committed/) });
      expect(read().pending_means, label).toBeUndefined();
      expect(project3Rows(live()), label).toEqual(lost);
    }
  });

  it('a constraint failing half-way through the inserts rolls every row back', async () => {
    resetTo(template, root);
    // A trigger of the program refuses one note: the recovery fails after many rows were written.
    withTasksDb(live(), (db) => db.exec("CREATE TRIGGER refuse_one BEFORE INSERT ON task_notes WHEN NEW.body = 'second note of task 292' BEGIN SELECT RAISE(ABORT, 'refused by the program'); END"));
    const err = await recover().then(
      () => null,
      (e: unknown) => e,
    );
    expect(describeError(err)).toMatch(/refused by the program.*rolled back: nothing was changed.*safety snapshot/);
    expect(await expectAllOrNone('trigger', err)).toBe('none');
  });
});
