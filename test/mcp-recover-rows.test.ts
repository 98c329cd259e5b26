import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio, connectWithConsent } from './support/mcp-client.js';
import { exactRows, filesState, makeTasksDb, project3Rows, withTasksDb } from './support/tasks-db.js';

/**
 * The scenario of issue 18 over MCP, with the SDK's client against the built server: 5,000 tasks
 * in 10 projects with notes (ON DELETE CASCADE, foreign keys on), hourly snapshots, then an
 * accidental `DELETE FROM tasks WHERE project_id = 3` that cascades to the notes, later good
 * changes and another snapshot. The agent finds the snapshot that still holds the rows, recovers the
 * tasks and their notes with the user's consent; the rows come back byte for byte and every later
 * change stays. Then the refusals: a conflicting key, a missing parent not included, a forged and
 * a replayed token.
 */
let root: string;
const live = () => path.join(root, 'db', 'tasks.db');
const hour = (h: number) => () => new Date(Date.UTC(2026, 10, 29, h, 0, 0));
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

interface Listed {
  snapshots: Array<{ id: string; created_at: string; manual: boolean }>;
}
interface Recovered {
  snapshot_id: string;
  dry_run: boolean;
  applied: boolean;
  confirm_token?: string;
  safety_snapshot_id: string | null;
  record: string | null;
  plan: {
    chosen: number;
    counts: { to_insert: number; conflicts: number; already_there: number; children_included: number; parents_included: number };
    children_missing: { count: number; sample: Array<{ table: string; on_delete: string }> };
    parents_missing: { count: number };
    blocked_by: string[];
  };
}

interface Diff {
  databases: Array<{ name: string; tables: Array<{ table: string; deleted: number | null; sample: Array<{ change: string; before?: Record<string, unknown> }> }> }>;
}

let lost: ReturnType<typeof project3Rows>;
let later: string[][];
let snapshotBeforeDamage: string;

beforeAll(async () => {
  root = tempRoot('wb-mcp-recover-');
  makeTasksDb(live(), 5000);
  // Hourly snapshots while work goes on.
  await runBackup(loadConfig(root), { now: hour(8) });
  withTasksDb(live(), (db) => db.prepare("UPDATE tasks SET done = 1 WHERE id BETWEEN 100 AND 120").run());
  await runBackup(loadConfig(root), { now: hour(9) });
  withTasksDb(live(), (db) => db.prepare("INSERT INTO tasks(id, project_id, title) VALUES (5001, 3, 'added at 9:30 to project 3')").run());
  snapshotBeforeDamage = (await runBackup(loadConfig(root), { now: hour(10) })).snapshot_id;
  lost = project3Rows(live());
  expect(lost.tasks).toHaveLength(501);
  expect(lost.notes).toHaveLength(1000);
  // The mistake: a wide DELETE, cascading to the notes.
  withTasksDb(live(), (db) => db.prepare('DELETE FROM tasks WHERE project_id = 3').run());
  // Later good work, and the next hourly snapshot.
  withTasksDb(live(), (db) => {
    db.prepare("INSERT INTO tasks(id, project_id, title, score) VALUES (6001, 4, 'written after the mistake', 1.5)").run();
    db.prepare("UPDATE tasks SET title = 'edited after the mistake' WHERE id = 1").run();
    db.prepare("INSERT INTO task_notes(task_id, body) VALUES (4, 'a note added after the mistake')").run();
  });
  await runBackup(loadConfig(root), { now: hour(11) });
  withTasksDb(live(), (db) => db.prepare("INSERT INTO projects(id, name) VALUES (11, 'started after the last snapshot')").run());
  later = [
    ...exactRows(live(), 'SELECT * FROM tasks WHERE id IN (1, 6001) ORDER BY id'),
    ...exactRows(live(), "SELECT * FROM task_notes WHERE body = 'a note added after the mistake'"),
    ...exactRows(live(), 'SELECT * FROM projects WHERE id = 11'),
  ];
}, 120_000);
afterAll(() => rmrf(root));

const laterNow = () => [
  ...exactRows(live(), 'SELECT * FROM tasks WHERE id IN (1, 6001) ORDER BY id'),
  ...exactRows(live(), "SELECT * FROM task_notes WHERE body = 'a note added after the mistake'"),
  ...exactRows(live(), 'SELECT * FROM projects WHERE id = 11'),
];

describe('an agent recovers the tasks a mistaken DELETE removed (MCP, SDK client)', () => {
  it('finds the snapshot, shows what is missing, recovers the tasks and their notes with consent; later changes stay', async () => {
    const { client, close, asked } = await connectWithConsent(root, 'accept');
    try {
      const tool = (await client.listTools()).tools.find((t) => t.name === 'data_recover_rows')!;
      expect(tool.annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
      expect(tool.description).toMatch(/data_snapshot_diff/);

      const listed = (await client.callTool({ name: 'data_backup_list', arguments: {} })).structuredContent as unknown as Listed;
      expect(listed.snapshots).toHaveLength(4);
      // Newest first: diff each snapshot with the one before it until the loss shows.
      let found: string | null = null;
      for (let i = 0; i + 1 < listed.snapshots.length && !found; i++) {
        const [newer, older] = [listed.snapshots[i]!, listed.snapshots[i + 1]!];
        const diff = await client.callTool({ name: 'data_snapshot_diff', arguments: { from: older.id, to: newer.id, databases: ['tasks'] } });
        expect(diff.isError, text(diff)).toBeFalsy();
        const tables = (diff.structuredContent as unknown as Diff).databases[0]!.tables;
        const tasks = tables.find((t) => t.table === 'tasks');
        if ((tasks?.deleted ?? 0) > 0) {
          expect(tasks!.deleted).toBe(501);
          expect(tables.find((t) => t.table === 'task_notes')!.deleted).toBe(1000);
          expect(tasks!.sample.find((r) => r.change === 'deleted')).toMatchObject({ before: { project_id: 3 } });
          found = older.id;
        }
      }
      expect(found).toBe(snapshotBeforeDamage);
      // What recovering them means: the dry run changes no byte or mtime of the live files.
      const before = filesState(live());
      const dry = await client.callTool({ name: 'data_recover_rows', arguments: { snapshot_id: found, database: 'tasks', table: 'tasks', where: 'project_id = 3', dry_run: true } });
      expect(dry.isError, text(dry)).toBeFalsy();
      expect(filesState(live()), 'a dry run changes no byte or mtime of the live files').toEqual(before);
      const plan = (dry.structuredContent as unknown as Recovered).plan;
      expect(plan.counts.to_insert).toBe(501);
      expect(plan.children_missing.count).toBe(1000);
      expect(plan.children_missing.sample[0]).toMatchObject({ table: 'task_notes', on_delete: 'CASCADE' });

      const done = await client.callTool({ name: 'data_recover_rows', arguments: { snapshot_id: found, database: 'tasks', table: 'tasks', where: 'project_id = 3', include: ['children'] } });
      expect(done.isError, text(done)).toBeFalsy();
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatch(/Put back rows of tasks\.tasks from snapshot .*\n- 501 row\(s\) chosen.*1501 to insert/s);
      expect(asked[0]).toMatch(/1000 child row\(s\)/);
      const result = done.structuredContent as unknown as Recovered;
      expect(result).toMatchObject({ applied: true, dry_run: false });
      expect(result.plan.counts).toMatchObject({ to_insert: 1501, children_included: 1000 });
      expect(text(done)).toContain(result.safety_snapshot_id!);

      expect(project3Rows(live()), 'the lost rows are back byte for byte').toEqual(lost);
      expect(laterNow(), 'every later change is still there').toEqual(later);
      expect(exactRows(live(), 'PRAGMA foreign_key_check')).toEqual([]);
      // The diff from the snapshot to live no longer shows project 3's rows as deleted.
      const check = (await client.callTool({ name: 'data_snapshot_diff', arguments: { from: found, to: 'live', databases: ['tasks'], tables: ['tasks', 'task_notes'] } })).structuredContent as unknown as Diff;
      const deletedNow = check.databases[0]!.tables.map((t) => t.sample.filter((r) => r.change === 'deleted'));
      expect(deletedNow.flat()).toEqual([]);
      const after = (await client.callTool({ name: 'data_backup_list', arguments: {} })).structuredContent as unknown as Listed;
      expect(after.snapshots.find((s) => s.id === result.safety_snapshot_id)).toMatchObject({ manual: true });
    } finally {
      await close();
    }
  }, 120_000);

  it('refuses a conflicting key, a missing parent not included, a forged and a replayed token', async () => {
    withTasksDb(live(), (db) => {
      db.prepare("UPDATE tasks SET title = 'renamed live' WHERE id = 2").run();
      db.prepare('DELETE FROM projects WHERE id = 5').run(); // cascades to its 500 tasks and their notes
    });
    const state = () => filesState(live());
    const { client, close } = await connectStdio(root);
    try {
      const args = { snapshot_id: snapshotBeforeDamage, database: 'tasks', table: 'tasks' };
      // A key that exists live with other values.
      let before = state();
      const conflict = await client.callTool({ name: 'data_recover_rows', arguments: { ...args, keys: [2], dry_run: true } });
      const c = conflict.structuredContent as unknown as Recovered;
      expect(c.plan.counts.conflicts).toBe(1);
      expect(c.plan.blocked_by.join(' ')).toMatch(/on_conflict/);
      expect(c.confirm_token).toBeUndefined();
      const noConsent = await client.callTool({ name: 'data_recover_rows', arguments: { ...args, keys: [2] } });
      expect(noConsent.isError).toBe(true);
      expect(text(noConsent)).toMatch(/consent.*dry_run: true.*confirm_token/s);
      expect(state()).toEqual(before);

      // Tasks of a project that is gone live: their parent is missing and not included.
      const missing = await client.callTool({ name: 'data_recover_rows', arguments: { ...args, where: 'project_id = 5', include: ['children'], dry_run: true } });
      const m = missing.structuredContent as unknown as Recovered;
      expect(m.plan.parents_missing.count).toBe(1);
      expect(m.plan.blocked_by.join(' ')).toMatch(/include \["parents"\]/);
      expect(m.confirm_token).toBeUndefined();
      expect(state()).toEqual(before);

      // With the parent included: a token, but a forged one is refused and a used one cannot be replayed.
      const dry = await client.callTool({ name: 'data_recover_rows', arguments: { ...args, where: 'project_id = 5', include: ['parents', 'children'], dry_run: true } });
      const d = dry.structuredContent as unknown as Recovered;
      expect(d.plan.counts).toMatchObject({ parents_included: 1 });
      expect(d.confirm_token).toMatch(/^wbc_recover_rows_/);
      const forged = await client.callTool({ name: 'data_recover_rows', arguments: { ...args, where: 'project_id = 5', include: ['parents', 'children'], confirm_token: 'wbc_recover_rows_forged000000000000000' } });
      expect(forged.isError).toBe(true);
      expect(text(forged)).toMatch(/not one this server issued.*Nothing was changed/s);
      expect(state()).toEqual(before);
      const ok = await client.callTool({ name: 'data_recover_rows', arguments: { ...args, where: 'project_id = 5', include: ['parents', 'children'], confirm_token: d.confirm_token } });
      expect(ok.isError, text(ok)).toBeFalsy();
      expect(exactRows(live(), 'SELECT count(*) FROM tasks WHERE project_id = 5')).toEqual([['int:500']]);
      before = state();
      const replay = await client.callTool({ name: 'data_recover_rows', arguments: { ...args, where: 'project_id = 5', include: ['parents', 'children'], confirm_token: d.confirm_token } });
      expect(replay.isError).toBe(true);
      expect(text(replay)).toMatch(/already used/);
      expect(state()).toEqual(before);
      expect(exactRows(live(), 'SELECT title FROM tasks WHERE id = 2')).toEqual([['text:renamed live']]);
    } finally {
      await close();
    }
  }, 120_000);
});
