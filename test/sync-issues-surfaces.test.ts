// The GitHub Issues transport on the surfaces an agent and a person use: the MCP tools (real SDK
// client against the built server) and the CLI, with the real gh against the GitHub emulator.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { CLI, rmrf, tempRoot } from './support/fixtures.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { connectStdio } from './support/mcp-client.js';

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown>; content: Array<{ type: string; text?: string }> };

let emu: GithubEmulator;
let work: string;
let root: string;
const REPO = 'octo/tasks';

beforeEach(async () => {
  emu = await startGithubEmulator();
  emu.createRepo(REPO);
  work = tempRoot('wb-issues-surface-');
  root = path.join(work, 'root');
  fs.mkdirSync(path.join(root, 'db'), { recursive: true });
  const db = new Database(path.join(root, 'db', 'tasks.db'));
  db.exec("CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open')");
  for (let i = 1; i <= 6; i++) db.prepare('INSERT INTO tasks VALUES (?, ?, ?)').run(i, `Task ${i}`, i === 6 ? 'done' : 'open');
  db.close();
  writeConfigFile(root, { sync: { issues: { repo: REPO, tables: { 'tasks.tasks': { title: 'title', state: { column: 'status', closed: ['done'] } } } } } });
});
afterEach(async () => {
  await emu.close();
  rmrf(work);
});

describe('the issues transport through MCP and the CLI', () => {
  it('github_sync_status, _push and _pull report the issues transport with its own counts when only sync.issues is configured', async () => {
    const { client, close } = await connectStdio(root, {}, emu.ghEnv());
    try {
      const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as ToolResult;
      const before = await call('github_sync_status', {});
      expect(before.isError).toBeFalsy();
      expect(before.structuredContent).toMatchObject({ configured: false, issues: { configured: true, repo: REPO, tracked_issues: 0, local_changes: { new: 6 } } });

      const pushed = await call('github_sync_push', {});
      expect(pushed.isError).toBeFalsy();
      expect(pushed.structuredContent).toMatchObject({ issues: { status: 'pushed', issues: { created: 6 } } });
      expect(pushed.structuredContent).not.toHaveProperty('branch'); // the git mirror is not configured: it did not run
      expect(emu.repo(REPO)!.issues.filter((i) => i.state === 'closed')).toHaveLength(1);

      // The card (the github_sync health component) shows the transport with its own counts.
      const health = await call('health_status', { component: 'github_sync' });
      const component = (health.structuredContent!.components as Array<{ status: string; checks: Array<{ id: string; status: string; detail: string }> }>)[0]!;
      expect(component.status).not.toBe('unwanted');
      expect(component.checks.find((c) => c.id === 'github_sync.sync-freshness')).toMatchObject({ status: 'ok', detail: 'issues octo/tasks: 6 tracked, 0 change(s) to push' });

      emu.editIssue(REPO, 2, { title: 'Task 2, renamed by a person' });
      const pulled = await call('github_sync_pull', { transport: 'issues' });
      expect(pulled.structuredContent).toMatchObject({ issues: { status: 'applied', applied: { 'tasks.tasks': { upserts: 1 } } } });
      const db = new Database(path.join(root, 'db', 'tasks.db'), { readonly: true });
      expect(db.prepare('SELECT title FROM tasks WHERE id = 2').pluck().get()).toBe('Task 2, renamed by a person');
      db.close();

      const git = await call('github_sync_push', { transport: 'git' });
      expect(git.isError).toBe(true); // the git mirror alone: not configured, says how
      expect(git.content[0]!.text).toMatch(/github-sync is not configured/);
    } finally {
      await close();
    }
  }, 120_000);

  it('wb-backup sync push --transport issues prints the issues line and sync status its counts', async () => {
    const cli = (...args: string[]) => execa(process.execPath, [CLI, ...args, '--root', root], { env: { ...(process.env as Record<string, string>), ...emu.ghEnv() }, reject: false });
    const push = await cli('sync', 'push', '--transport', 'issues');
    expect(push.exitCode).toBe(0);
    expect(push.stdout).toMatch(/^issues pushed: octo\/tasks: 6 issue\(s\) created/m);
    const status = await cli('sync', 'status', '--json');
    expect(JSON.parse(status.stdout)).toMatchObject({ issues: { tracked_issues: 6, local_changes: { new: 0, changed: 0 } } });
  }, 120_000);
});
