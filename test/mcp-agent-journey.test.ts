// An agent with only the MCP surface, from a data root holding nothing but its databases to: backups
// pushed to GitHub, github-sync set up and pushed, a restore with informed consent, an undo, and a
// sync conflict resolved row by row. Every tool name and argument comes from the tool list, a tool
// description or an earlier result: the test reads them from there instead of knowing them.
// Real parts: the built server over stdio with the SDK client, real gh and real git against the
// GitHub emulator (in this process, so git runs asynchronously), real SQLite files.
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeNotesDb, rmrf, tableCounts, tempRoot } from './support/fixtures.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { connectStdio } from './support/mcp-client.js';

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown>; content: Array<{ type: string; text?: string }> };
type Requirement = { id: string; status: string; detail: string; fixer?: { kind: string } };
type Report = { id: string; status: string; requirements: Requirement[] };

let work: string;
let root: string;
let emu: GithubEmulator;
let env: Record<string, string>;
const notes = () => path.join(root, 'db', 'notes.db');

beforeEach(async () => {
  work = tempRoot('wb-journey-');
  root = path.join(work, 'root');
  makeNotesDb(notes(), 12);
  emu = await startGithubEmulator();
  env = emu.gitEnv();
});
afterEach(async () => {
  await emu.close();
  rmrf(work);
});

const textOf = (r: ToolResult) => r.content.map((c) => c.text ?? '').join('\n');

/** Calls a tool only when the server lists it, and fails the test with the result's text on an error result. */
async function use(client: Client, listed: Set<string>, name: string, args: Record<string, unknown>): Promise<ToolResult> {
  expect(listed, `the agent only calls tools the server lists (${name})`).toContain(name);
  const r = (await client.callTool({ name, arguments: args })) as ToolResult;
  expect(r.isError, `${name} ${JSON.stringify(args)}: ${textOf(r)}`).toBeFalsy();
  return r;
}

/** A person edits the mirror on GitHub: clone over HTTPS with gh as the credential helper, change a row, push. */
async function personEdits(repo: string, branch: string, edit: (line: string) => string): Promise<void> {
  const git = async (cwd: string, ...args: string[]) => {
    const r = await execa('git', ['-c', 'credential.helper=', '-c', 'credential.helper=!gh auth git-credential', ...args], { cwd, env, extendEnv: false, reject: false });
    if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  };
  const clone = path.join(work, 'person');
  await git(work, 'clone', '-q', emu.cloneUrl(repo), clone);
  const file = path.join(clone, 'notes', 'notes.jsonl');
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const at = lines.findIndex((l) => l.includes('"id":3,') || l.includes('"id":3}'));
  expect(at, 'row 3 is in the mirror').toBeGreaterThanOrEqual(0);
  lines[at] = edit(lines[at]!);
  fs.writeFileSync(file, lines.join('\n'));
  await git(clone, '-c', 'user.name=Person', '-c', 'user.email=person@example.com', 'commit', '-q', '-am', 'edited on GitHub');
  await git(clone, 'push', '-q', 'origin', `HEAD:${branch}`);
}

/** The first failing requirement of a component that has a fixer asking for inputs, from health_status. */
async function component(client: Client, listed: Set<string>, id: string): Promise<Report> {
  const r = await use(client, listed, 'health_status', { component: id });
  return (r.structuredContent!.components as Report[])[0]!;
}

/**
 * Turn an opt-in component on and answer its repository requirement, all from results: the
 * component id from health_status, the requirement id from its report, the input names from the
 * schema health_fix returns.
 */
async function setUp(client: Client, listed: Set<string>, id: string, answer: (inputNames: string[]) => Record<string, unknown>): Promise<void> {
  const before = await component(client, listed, id);
  expect(before.status).toBe('unwanted');
  await use(client, listed, 'health_fix', { requirement: before.id });
  const open = await component(client, listed, id);
  const failing = open.requirements.find((r) => r.status === 'fail' && r.fixer?.kind === 'input_required');
  expect(failing, JSON.stringify(open.requirements)).toBeDefined();
  const asked = await use(client, listed, 'health_fix', { requirement: failing!.id });
  expect(asked.structuredContent).toMatchObject({ status: 'needs_input' });
  const names = Object.keys((asked.structuredContent!.inputs_schema as { properties: Record<string, unknown> }).properties);
  const fixed = await use(client, listed, 'health_fix', { requirement: failing!.id, inputs: answer(names) });
  expect(fixed.structuredContent).toMatchObject({ status: 'fixed' });
  const after = await component(client, listed, id);
  expect(after.requirements.every((r) => r.status === 'ok'), JSON.stringify(after.requirements)).toBe(true);
}

describe('an agent with only the MCP tools', () => {
  it('from nothing to GitHub backups and a mirror, then a restore with informed consent, an undo and a conflict resolved', async () => {
    const { client, close } = await connectStdio(root, {}, env);
    try {
      const tools = (await client.listTools()).tools;
      const listed = new Set(tools.map((t) => t.name));
      const describedAs = (name: string) => tools.find((t) => t.name === name)?.description ?? '';

      // 1. Backups off the machine: github_backups is opt-in; its fixer asks for the repository.
      await setUp(client, listed, 'github_backups', (names) => {
        expect(names).toContain('repo');
        return { repo: 'agent-backups' };
      });
      const backup = await use(client, listed, 'data_backup', {});
      const snapshotId = backup.structuredContent!.snapshot_id as string;
      expect(backup.structuredContent).toMatchObject({ remote: { status: 'pushed' } });
      expect(emu.repo('octo/agent-backups')!.releases.map((r) => r.tag_name)).toContain(snapshotId);
      const listedSnapshots = await use(client, listed, 'data_backup_list', {});
      expect(JSON.stringify(listedSnapshots.structuredContent)).toContain(snapshotId);

      // 2. github-sync: set up with tool calls alone, then a first push to the new repository.
      await setUp(client, listed, 'github_sync', (names) => {
        expect(names).toContain('repo');
        return { repo: 'agent-mirror' };
      });
      const pushed = await use(client, listed, 'github_sync_push', {});
      expect(pushed.structuredContent).toMatchObject({ status: 'pushed' });
      const branch = pushed.structuredContent!.branch as string;

      // 3. Work goes on, then the agent is asked to go back to the snapshot: the plan says what is lost.
      const db = new Database(notes());
      db.prepare('INSERT INTO notes (id, folder_id, title, body) VALUES (?, ?, ?, ?)').run(100, 1, 'written after the snapshot', 'x');
      db.close();
      const liveRows = tableCounts(notes()).notes!;
      expect(describedAs('data_restore')).toMatch(/dry_run/);
      const plan = await use(client, listed, 'data_restore', { snapshot_id: snapshotId, dry_run: true });
      const planText = textOf(plan);
      // Informed consent: live rows next to the snapshot's, the snapshot's age and host, and what is lost.
      expect(planText).toMatch(new RegExp(`notes: ${liveRows} live -> ${liveRows - 1} snapshot`));
      expect(planText).toMatch(/taken (just now|.+ ago) on this machine/);
      expect(planText).toMatch(/loses: notes: 1 row added since the snapshot/);
      expect(plan.structuredContent!.snapshot).toMatchObject({ this_machine: true, host: expect.any(String), age: expect.any(String) });
      const restored = await use(client, listed, 'data_restore', { snapshot_id: snapshotId, confirm_token: plan.structuredContent!.confirm_token as string });
      expect(textOf(restored)).toMatch(/data_restore_undo/);
      expect(tableCounts(notes()).notes).toBe(liveRows - 1);

      // 4. The user changes their mind: undo, with the same consent (dry run, then its token).
      const undoPlan = await use(client, listed, 'data_restore_undo', { dry_run: true });
      expect(undoPlan.structuredContent).toMatchObject({ status: 'dry_run' });
      const undone = await use(client, listed, 'data_restore_undo', { confirm_token: undoPlan.structuredContent!.confirm_token as string });
      expect(undone.structuredContent).toMatchObject({ status: 'undone' });
      expect(tableCounts(notes()).notes).toBe(liveRows);
      const again = await use(client, listed, 'data_restore_undo', { dry_run: true });
      expect(again.structuredContent).toMatchObject({ status: 'nothing_to_undo' });

      // 5. The same row edited here and on GitHub: pull reports it, resolve takes GitHub's version.
      await use(client, listed, 'github_sync_push', {});
      await personEdits('octo/agent-mirror', branch, (line) => line.replace(/"title":"[^"]*"/, '"title":"edited on GitHub"'));
      const local = new Database(notes());
      local.prepare('UPDATE notes SET title = ? WHERE id = 3').run('edited by the agent');
      local.close();
      const pulled = await use(client, listed, 'github_sync_pull', {});
      expect(pulled.structuredContent).toMatchObject({ status: 'conflicts' });
      expect(textOf(pulled)).toMatch(/github_sync_resolve/);
      const open = await use(client, listed, 'github_sync_resolve', {});
      const conflicts = open.structuredContent!.conflicts as Array<{ database: string; table: string; key: string }>;
      expect(conflicts).toHaveLength(1);
      const { database, table, key } = conflicts[0]!;
      const resolutions = [{ database, table, key, take: 'theirs' }];
      const dry = await use(client, listed, 'github_sync_resolve', { resolutions, dry_run: true });
      const resolved = await use(client, listed, 'github_sync_resolve', { resolutions, confirm_token: dry.structuredContent!.confirm_token as string });
      expect(resolved.structuredContent).toMatchObject({ base_advanced: true });
      const check = new Database(notes(), { readonly: true });
      expect(check.prepare('SELECT title FROM notes WHERE id = 3').get()).toEqual({ title: 'edited on GitHub' });
      check.close();
      const clean = await use(client, listed, 'github_sync_pull', {});
      expect(clean.structuredContent).toMatchObject({ status: 'up_to_date' });
    } finally {
      await close();
    }
  }, 300_000);
});
