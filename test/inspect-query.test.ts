// "Show me what the snapshot held, without touching my data": data_snapshot_query / `wb-backup
// query` read a snapshot with SQL; writes, other files and runaway queries are refused or stopped.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { snapshotQuery } from '../src/inspect/query.js';
import { WbError } from '../src/core/errors.js';
import { CLI, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

let root: string;
let id: string;
const live = () => path.join(root, 'db', 'tasks.db');

beforeEach(async () => {
  root = tempRoot('wb-inspect-query-');
  fs.mkdirSync(path.join(root, 'db'), { recursive: true });
  const db = new Database(live());
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE tasks (id INTEGER PRIMARY KEY, project_id INTEGER, title TEXT, big INTEGER)');
  const insert = db.prepare('INSERT INTO tasks VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= 250; i++) insert.run(i, (i % 5) + 1, i === 9 ? 'y'.repeat(3000) : `task ${i}`, i === 1 ? 9007199254740993n : i);
  })();
  db.close();
  id = (await runBackup(loadConfig(root), { remote: null, manual: true })).snapshot_id;
  // Later changes: the query must show the snapshot, not these.
  const after = new Database(live());
  after.prepare('DELETE FROM tasks WHERE project_id = 3').run();
  after.close();
});
afterEach(() => rmrf(root));

function liveState(): { ino: number; size: number; mtimeMs: number; bytes: Buffer } {
  const st = fs.statSync(live());
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, bytes: fs.readFileSync(live()) };
}

async function refusedWith(sql: string, timeoutMs?: number): Promise<WbError> {
  const err = await snapshotQuery(loadConfig(root), { snapshotId: id, database: 'tasks', sql, ...(timeoutMs ? { timeoutMs } : {}) }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WbError);
  return err as WbError;
}

describe('reading a snapshot with SQL', () => {
  it('shows the rows a later DELETE took, as the snapshot held them, and pages with next_offset', async () => {
    const first = await snapshotQuery(loadConfig(root), { snapshotId: id, database: 'tasks', sql: 'SELECT id, title, big FROM tasks WHERE project_id = 3 ORDER BY id', maxRows: 30 });
    expect(first.columns).toEqual(['id', 'title', 'big']);
    expect(first.rows).toHaveLength(30);
    expect(first.rows[0]).toEqual([2, 'task 2', 2]);
    expect(first).toMatchObject({ more: true, next_offset: 30, snapshot_id: id });
    const second = await snapshotQuery(loadConfig(root), { snapshotId: 'latest', database: 'tasks', sql: 'SELECT id, title, big FROM tasks WHERE project_id = 3 ORDER BY id', maxRows: 30, offset: 30 });
    expect(second.rows.map((r) => r[0])).toEqual(Array.from({ length: 20 }, (_, i) => 2 + 5 * (30 + i)));
    expect(second).toMatchObject({ more: false, next_offset: null });
  });

  it('values are bounded: long text says its length, a 64-bit integer keeps every digit', async () => {
    const r = await snapshotQuery(loadConfig(root), { snapshotId: id, database: 'tasks', sql: 'SELECT title, big FROM tasks WHERE id IN (1, 9) ORDER BY id' });
    expect(r.rows[0]![1]).toEqual({ integer: '9007199254740993' });
    expect(r.rows[1]![0]).toEqual({ text_prefix: 'y'.repeat(500), length: 3000 });
  });

  it.each([
    ['INSERT', "INSERT INTO tasks VALUES (999, 1, 'x', 1)", /writes/],
    ['UPDATE', "UPDATE tasks SET title = 'x'", /writes/],
    ['DELETE', 'DELETE FROM tasks', /writes/],
    ['CREATE', 'CREATE TABLE t (a)', /writes/],
    ['ATTACH of the live file', '', /ATTACH is refused/],
    ['PRAGMA writable_schema = 1', 'PRAGMA writable_schema = 1', /PRAGMA that sets a value is refused/],
    ['PRAGMA journal_mode', 'PRAGMA journal_mode', /PRAGMA journal_mode is refused/],
    ['load_extension', "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libm.so.6')", /not authorized|load_extension/],
    ['several statements', 'SELECT 1; DELETE FROM tasks', /several statements/],
    ['BEGIN', 'BEGIN', /returns no rows/],
    ['VACUUM INTO', "VACUUM INTO '/tmp/wb-copy.db'", /VACUUM is refused/],
  ])('%s is refused with a clear error, and the snapshot and the live file stay as they were', async (_name, sqlGiven, message) => {
    const sql = sqlGiven || `ATTACH '${live()}' AS l`;
    const before = liveState();
    const err = await refusedWith(sql);
    expect(err.code).toBe('invalid_input');
    expect(err.message).toMatch(message);
    const after = liveState();
    expect([after.ino, after.size, after.mtimeMs]).toEqual([before.ino, before.size, before.mtimeMs]);
    expect(after.bytes.equals(before.bytes)).toBe(true);
    const still = await snapshotQuery(loadConfig(root), { snapshotId: id, database: 'tasks', sql: 'SELECT count(*) AS n FROM tasks' });
    expect(still.rows).toEqual([[250]]);
  });

  it('a runaway recursive CTE is stopped at the time limit, and the live file is never opened by the query process', async () => {
    let pid = 0;
    const opened: string[] = [];
    const run = snapshotQuery(loadConfig(root), {
      snapshotId: id,
      database: 'tasks',
      sql: 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n',
      timeoutMs: 1500,
      onProcess: (p) => {
        pid = p;
        // What the query process has open while it runs: the cached copy, never the live database.
        for (const fd of fs.readdirSync(`/proc/${p}/fd`)) {
          try {
            opened.push(fs.readlinkSync(`/proc/${p}/fd/${fd}`));
          } catch {
            /* closed meanwhile */
          }
        }
      },
    });
    const err = await run.then(() => null, (e: unknown) => e as WbError);
    expect(err).toBeInstanceOf(WbError);
    expect(err!.message).toMatch(/stopped after 1.5 s \(the time limit\)/);
    expect(pid).toBeGreaterThan(0);
    expect(opened.some((f) => f.endsWith(path.join('tasks', 'image.db')))).toBe(true);
    expect(opened.filter((f) => f.startsWith(path.join(root, 'db')))).toEqual([]);
    // The process is gone.
    await expect.poll(() => fs.existsSync(`/proc/${pid}`) && !/State:\s+Z/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))).toBe(false);
  });

  it('a runaway query does not outlive its server: killing wb-backup with -9 stops the query process too', async () => {
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'inspect:\n  query_timeout_ms: 600000\n');
    const cli = spawn(process.execPath, [CLI, '--root', root, 'query', id, '--db', 'tasks', 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n'], { stdio: 'ignore' });
    const childrenOf = (pid: number): number[] => {
      try {
        return fs.readdirSync(`/proc/${pid}/task`).flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
      } catch {
        return [];
      }
    };
    const isQuery = (pid: number) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('query-child');
      } catch {
        return false;
      }
    };
    await expect.poll(() => childrenOf(cli.pid!).filter(isQuery).length, { timeout: 60_000 }).toBe(1);
    const query = childrenOf(cli.pid!).find(isQuery)!;
    // Killed once the query runs (the snapshot's copy is open), not while its process still starts.
    const opened = () => {
      try {
        return fs.readdirSync(`/proc/${query}/fd`).some((fd) => {
          try {
            return fs.readlinkSync(`/proc/${query}/fd/${fd}`).endsWith('image.db');
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    };
    await expect.poll(opened, { timeout: 60_000 }).toBe(true);
    cli.kill('SIGKILL');
    const alive = () => {
      try {
        return !/State:\s+Z/.test(fs.readFileSync(`/proc/${query}/status`, 'utf8'));
      } catch {
        return false;
      }
    };
    await expect.poll(alive, { timeout: 30_000 }).toBe(false);
  });

  it('the query still answers when the live database is gone: it reads only the snapshot', async () => {
    fs.rmSync(live());
    fs.rmSync(`${live()}-wal`, { force: true });
    fs.rmSync(`${live()}-shm`, { force: true });
    const r = await snapshotQuery(loadConfig(root), { snapshotId: id, database: 'tasks', sql: 'SELECT count(*) FROM tasks WHERE project_id = 3' });
    expect(r.rows).toEqual([[50]]);
    expect(fs.existsSync(live())).toBe(false);
  });
});

describe('wb-backup query and data_snapshot_query over MCP', () => {
  it('the CLI prints the rows, and refuses a write with exit status 2', () => {
    const text = execFileSync(process.execPath, [CLI, '--root', root, 'query', id, '--db', 'tasks', 'SELECT id, title FROM tasks WHERE id < 3 ORDER BY id'], { encoding: 'utf8' });
    expect(text.split('\n').slice(0, 3)).toEqual(['id\ttitle', '1\ttask 1', '2\ttask 2']);
    const refused = spawnSync(process.execPath, [CLI, '--root', root, 'query', id, '--db', 'tasks', 'DELETE FROM tasks'], { encoding: 'utf8' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/The query was refused: the statement writes/);
  });

  it('a query of many wide columns does not flood the terminal: the CLI prints what fits, says how many rows it left out and the --offset that continues', () => {
    const wide = Array.from({ length: 20 }, (_, i) => `printf('%.500c', '${String.fromCharCode(97 + i)}') AS c${i}`).join(', ');
    const sql = `SELECT id, ${wide} FROM tasks ORDER BY id`;
    const run = (...extra: string[]) => execFileSync(process.execPath, [CLI, '--root', root, 'query', id, '--db', 'tasks', sql, ...extra], { encoding: 'utf8' });
    const text = run();
    const lines = text.trimEnd().split('\n');
    const printed = lines.slice(1, -1);
    // 100 rows of ~10,000 characters asked for: only what fits the cap is printed, each row whole.
    expect(text.length).toBeLessThan(70_000);
    expect(printed.length).toBeGreaterThan(0);
    expect(printed.length).toBeLessThan(100);
    expect(printed.map((l) => Number(l.split('\t')[0]))).toEqual(printed.map((_, i) => i + 1));
    expect(printed.every((l) => l.split('\t').length === 21 && l.split('\t')[20] === 't'.repeat(500))).toBe(true);
    const footer = lines.at(-1)!;
    expect(footer).toContain(`(${printed.length} row(s) from tasks in ${id}; ${100 - printed.length} more row(s) of this page not printed: the output is capped at`);
    expect(footer).toContain(`more: --offset ${printed.length}`);
    // The offset it names continues exactly after the last row printed.
    const next = run('--offset', String(printed.length)).split('\n');
    expect(next[1]!.split('\t')[0]).toBe(String(printed.length + 1));
    // --json is bounded the same way, its next_offset continuing there.
    const json = JSON.parse(run('--json')) as { rows: unknown[][]; more: boolean; next_offset: number };
    expect(json.rows).toHaveLength(printed.length);
    expect(json).toMatchObject({ more: true, next_offset: printed.length });
    // A small result is printed whole, as before.
    expect(run('--limit', '2').trimEnd().split('\n').at(-1)).toBe(`(2 row(s) from tasks in ${id}; more: --offset 2)`);
  });

  it('an agent diffs the snapshot against live, then reads the lost rows; a write is an error result', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const tools = (await client.listTools()).tools;
      const q = tools.find((t) => t.name === 'data_snapshot_query')!;
      const d = tools.find((t) => t.name === 'data_snapshot_diff')!;
      expect(q.annotations?.readOnlyHint).toBe(true);
      expect(d.annotations?.readOnlyHint).toBe(true);
      expect(d.description).toMatch(/data_recover_rows/);

      const diff = (await client.callTool({ name: 'data_snapshot_diff', arguments: { from: id, to: 'live' } })) as CallToolResult;
      expect(diff.isError).toBeFalsy();
      const dc = diff.structuredContent as { totals: { rows_deleted: number }; databases: Array<{ tables: Array<{ table: string; deleted: number; sample: unknown[] }> }> };
      expect(dc.totals.rows_deleted).toBe(50);
      expect(dc.databases[0]!.tables[0]).toMatchObject({ table: 'tasks', deleted: 50 });
      expect(dc.databases[0]!.tables[0]!.sample.length).toBeLessThanOrEqual(20);

      // The next differing rows of that table, through its rows cursor.
      const small = (await client.callTool({ name: 'data_snapshot_diff', arguments: { from: id, to: 'live', sample: 5 } })) as CallToolResult;
      const t1 = (small.structuredContent as { databases: Array<{ tables: Array<{ sample: Array<{ key: { id: number } }>; next_rows_cursor: string | null }> }> }).databases[0]!.tables[0]!;
      expect(t1.sample.map((r) => r.key.id)).toEqual([2, 7, 12, 17, 22]);
      const next = (await client.callTool({ name: 'data_snapshot_diff', arguments: { from: id, to: 'live', sample: 5, rows_cursor: t1.next_rows_cursor! } })) as CallToolResult;
      expect(next.isError).toBeFalsy();
      const t2 = (next.structuredContent as { databases: Array<{ tables: Array<{ sample: Array<{ key: { id: number } }>; deleted: number | null }> }> }).databases[0]!.tables[0]!;
      expect(t2.sample.map((r) => r.key.id)).toEqual([27, 32, 37, 42, 47]);
      expect(t2.deleted).toBeNull();

      const res = (await client.callTool({ name: 'data_snapshot_query', arguments: { snapshot_id: id, database: 'tasks', sql: 'SELECT id FROM tasks WHERE project_id = 3 ORDER BY id' } })) as CallToolResult;
      expect(res.isError).toBeFalsy();
      const sc = res.structuredContent as { rows: unknown[][]; lists?: { truncated: Array<{ path: string; total: number }> } };
      // 50 rows were read; the reply shows a sample and says the total (src/mcp/bounded.ts).
      expect(sc.lists?.truncated).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'rows', total: 50 })]));

      const bad = (await client.callTool({ name: 'data_snapshot_query', arguments: { snapshot_id: id, database: 'tasks', sql: 'PRAGMA writable_schema = 1' } })) as CallToolResult;
      expect(bad.isError).toBe(true);
      expect(JSON.stringify(bad.content)).toMatch(/PRAGMA that sets a value is refused/);
    } finally {
      await close();
    }
  });
});
