import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import matter from 'gray-matter';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { defaultJobsDir, loadJobs } from '../src/sidecar/jobs.js';
import { SidecarRunner } from '../src/sidecar/runner.js';
import { runnerDeps } from '../src/sidecar/service.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { CLI, makeNotesDb, REPO_ROOT, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-agent-');
  root = path.join(work, 'root');
  makeNotesDb(path.join(root, 'db', 'notes.db'), 10);
});
afterEach(() => rmrf(work));

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown>; content: Array<{ type: string; text?: string }> };
const textOf = (r: ToolResult) => r.content.map((c) => c.text ?? '').join('\n');
const listedIds = async (client: Client) =>
  (((await client.callTool({ name: 'data_backup_list', arguments: { where: 'local' } })) as ToolResult).structuredContent!.snapshots as Array<{ id: string }>).map((s) => s.id);

describe('a snapshot an agent asks for is an anchor', () => {
  it('data_backup {} survives the hourly snapshot the sidecar takes in the same hour', async () => {
    // Full snapshots only: the retention of routine snapshots is what is asserted here (with
    // incremental snapshots the older routine one stays as the base of the newer: the next test).
    writeConfigFile(root, { backup: { incremental: { enabled: false } } });
    const { client, close } = await connectStdio(root);
    try {
      const tool = (await client.listTools()).tools.find((t) => t.name === 'data_backup')!;
      expect(tool.description).toMatch(/manual: false only for a routine snapshot/);
      const taken = (await client.callTool({ name: 'data_backup', arguments: {} })) as ToolResult;
      expect(taken.isError).toBeFalsy();
      const anchor = taken.structuredContent!.snapshot_id as string;
      expect(taken.structuredContent!.manual).toBe(true);

      // The sidecar's own job file and runner, as `serve` runs them at the top of the hour.
      const { jobs } = loadJobs(defaultJobsDir(), ['data_backup']);
      const hourlyJob = jobs.find((j) => j.capability === 'data_backup')!;
      const runner = new SidecarRunner([hourlyJob], runnerDeps(root));
      await runner.fire(hourlyJob, 'scheduled');
      await runner.fire(hourlyJob, 'scheduled');
      expect(runner.history.map((h) => h.outcome)).toEqual(['ran', 'ran']);

      const ids = await listedIds(client);
      expect(ids).toContain(anchor);
      // The scheduled ones are routine: two in one hour keep only the newest, the anchor stays.
      expect(ids.filter((id) => !id.endsWith('-manual'))).toHaveLength(1);
    } finally {
      await close();
    }
  });

  it('with incremental snapshots, an older routine snapshot of the hour is kept only as the base of the newer one', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const taken = (await client.callTool({ name: 'data_backup', arguments: {} })) as ToolResult;
      expect(taken.isError).toBeFalsy();
      const anchor = taken.structuredContent!.snapshot_id as string;
      const { jobs } = loadJobs(defaultJobsDir(), ['data_backup']);
      const hourlyJob = jobs.find((j) => j.capability === 'data_backup')!;
      const runner = new SidecarRunner([hourlyJob], runnerDeps(root));
      await runner.fire(hourlyJob, 'scheduled');
      await runner.fire(hourlyJob, 'scheduled');
      await runner.fire(hourlyJob, 'scheduled');
      expect(runner.history.map((h) => h.outcome)).toEqual(['ran', 'ran', 'ran']);
      const listed = ((await client.callTool({ name: 'data_backup_list', arguments: { where: 'local' } })) as ToolResult).structuredContent!.snapshots as Array<{ id: string; kind?: string; base?: string }>;
      expect(listed.map((s) => s.id)).toContain(anchor);
      const byId = new Map(listed.map((s) => [s.id, s]));
      const routine = listed.filter((s) => !s.id.endsWith('-manual'));
      // The newest routine snapshot is kept; every other routine one kept is a link of its chain.
      const chain = new Set<string>();
      for (let s = routine[0]; s?.kind === 'delta' && s.base; s = byId.get(s.base)) chain.add(s.base);
      expect(routine.length).toBeGreaterThanOrEqual(1);
      for (const s of routine.slice(1)) expect(chain.has(s.id), `${s.id} kept without a kept snapshot depending on it`).toBe(true);
      expect(routine.length).toBeLessThanOrEqual(3);
    } finally {
      await close();
    }
  });

  it('the sidecar path stays routine even for a job file that passes no arguments', async () => {
    const job = { name: 'bare', file: 'bare.md', description: '', schedule: '0 * * * *', capability: 'data_backup', args: {}, requires: null, enabled: true, catch_up: true };
    await new SidecarRunner([job], runnerDeps(root)).fire(job, 'scheduled');
    const { client, close } = await connectStdio(root);
    try {
      expect(await listedIds(client)).toEqual([expect.not.stringMatching(/-manual$/)]);
    } finally {
      await close();
    }
  });

  it('wb-backup now is a manual anchor by default; --manual still works and --no-manual takes a routine one', () => {
    const now = (...flags: string[]) => {
      const r = spawnSync(process.execPath, [CLI, '--root', root, 'now', '--json', ...flags], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { snapshot_id: string; manual: boolean };
    };
    expect(now()).toMatchObject({ manual: true, snapshot_id: expect.stringMatching(/-manual$/) });
    expect(now('--manual')).toMatchObject({ manual: true, snapshot_id: expect.stringMatching(/-manual$/) });
    expect(now('--no-manual')).toMatchObject({ manual: false, snapshot_id: expect.not.stringMatching(/-manual$/) });
  });
});

describe('failed, declined and unavailable fixes are error results', () => {
  it('a requirement without a fixer answers isError with status failed and says why', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const health = (await client.callTool({ name: 'health_status', arguments: {} })) as ToolResult;
      const components = health.structuredContent!.components as Array<{ id: string; requirements: Array<{ id: string; fixer?: unknown }> }>;
      const unfixable = components.flatMap((c) => c.requirements.filter((r) => !r.fixer).map((r) => r.id));
      expect(unfixable.length).toBeGreaterThan(0);
      for (const id of unfixable) {
        const r = (await client.callTool({ name: 'health_fix', arguments: { requirement: id } })) as ToolResult;
        expect(r.isError, id).toBe(true);
        expect(r.structuredContent).toMatchObject({ requirement: id, status: 'failed', message: expect.stringMatching(/has no fixer/) });
        expect(textOf(r)).toMatch(/failed — .*has no fixer/);
      }
    } finally {
      await close();
    }
  });

  for (const action of ['decline', 'cancel'] as const) {
    it(`a fix form the user ${action}s answers isError and changes nothing`, async () => {
      const { client, close } = await connectStdio(root, { capabilities: { elicitation: { form: {} } } });
      client.setRequestHandler(ElicitRequestSchema, async () => ({ action }));
      try {
        const before = fs.readFileSync(path.join(root, 'wb-backup.yaml'), { encoding: 'utf8', flag: 'a+' });
        const r = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups.repo-configured' } })) as ToolResult;
        expect(r.isError).toBe(true);
        expect(r.structuredContent).toMatchObject({ status: 'failed', message: expect.stringMatching(action === 'decline' ? /declined; nothing was changed/ : /cancelled; nothing was changed/) });
        expect(fs.readFileSync(path.join(root, 'wb-backup.yaml'), 'utf8')).toBe(before);
      } finally {
        await close();
      }
    });
  }

  it('a fix that needs inputs without an elicitation client is not an error: it asks for them', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const r = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups.repo-configured' } })) as ToolResult;
      expect(r.isError).toBeFalsy();
      expect(r.structuredContent).toMatchObject({ status: 'needs_input', inputs_schema: expect.any(Object) });
    } finally {
      await close();
    }
  });

  it('a push refused because the remote changed is an error result that still lists the changed paths', async () => {
    const bare = seededBareRemote(work);
    writeConfigFile(root, { sync: { github: { remote_url: bare } } });
    const { client, close } = await connectStdio(root);
    try {
      const first = (await client.callTool({ name: 'github_sync_push', arguments: {} })) as ToolResult;
      expect(first.isError).toBeFalsy();
      expect(first.structuredContent).toMatchObject({ status: 'pushed' });
      const other = path.join(work, 'other');
      git(work, 'clone', '-q', bare, other);
      const file = path.join(other, 'notes', 'notes.jsonl');
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"note 0"', '"edited elsewhere"'));
      git(other, 'commit', '-q', '-am', 'edit on the remote');
      git(other, 'push', '-q', 'origin', 'HEAD:trunk');

      const refused = (await client.callTool({ name: 'github_sync_push', arguments: {} })) as ToolResult;
      expect(refused.isError).toBe(true);
      expect(refused.structuredContent).toMatchObject({ status: 'remote_changed', remote_changed_paths: ['notes/notes.jsonl'] });
      expect(textOf(refused)).toMatch(/github_sync_pull|pull/);
    } finally {
      await close();
    }
  });
});

describe('instructions and prompts cover the whole surface', () => {
  it('the instructions name every tool, and every command file is a prompt with described arguments', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const instructions = client.getInstructions() ?? '';
      const { tools } = await client.listTools();
      expect(tools.length).toBeGreaterThan(5);
      for (const t of tools) expect(instructions, t.name).toMatch(new RegExp(`^- ${t.name}: .+`, 'm'));

      const { prompts } = await client.listPrompts();
      const files = fs.readdirSync(path.join(REPO_ROOT, 'commands')).filter((n) => n.endsWith('.md'));
      expect(prompts.map((p) => p.name).sort()).toEqual(files.map((n) => n.replace(/\.md$/, '')).sort());
      for (const p of prompts) {
        const declared = ((matter(fs.readFileSync(path.join(REPO_ROOT, 'commands', `${p.name}.md`), 'utf8')).data.arguments ?? []) as Array<{ name: string }>).map((a) => a.name);
        expect((p.arguments ?? []).map((a) => a.name), p.name).toEqual(declared);
        for (const a of p.arguments ?? []) expect(a.description, `${p.name}.${a.name}`).toMatch(/\w{3,}/);
      }
    } finally {
      await close();
    }
  });

  it('a new command file in a copy of the plug-in folders becomes a prompt with its arguments', async () => {
    // A copy of the built package: dist/, commands/ (plus one new command), package.json, node_modules.
    const pkg = path.join(work, 'pkg');
    fs.cpSync(path.join(REPO_ROOT, 'dist'), path.join(pkg, 'dist'), { recursive: true });
    fs.cpSync(path.join(REPO_ROOT, 'commands'), path.join(pkg, 'commands'), { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(pkg, 'package.json'));
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    fs.writeFileSync(
      path.join(pkg, 'commands', 'wb-backup-check.md'),
      '---\ndescription: Check the backups\ntitle: Check backups\narguments:\n  - name: component\n    description: which component to check, e.g. github_backups\n    required: true\n---\nCall health_status for $ARGUMENTS and tell me what to fix.\n',
    );
    // A malformed one (an argument without description) is left out and named; the server still starts.
    fs.writeFileSync(path.join(pkg, 'commands', 'wb-backup-broken.md'), '---\ndescription: Broken\narguments:\n  - name: what\n---\nBody\n');
    let stderr = '';
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [path.join(pkg, 'dist', 'src', 'cli', 'main.js'), 'serve', '--no-sidecar', '--root', root],
      env: { ...(process.env as Record<string, string>), WB_BACKUP_LOG_LEVEL: 'warn' },
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const client = new Client({ name: 'wb-backup-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      const { prompts } = await client.listPrompts();
      const check = prompts.find((p) => p.name === 'wb-backup-check');
      expect(prompts.map((p) => p.name).sort()).toEqual(['wb-backup-check', 'wb-backup-now', 'wb-backup-recover', 'wb-backup-restore']);
      expect(stderr).toMatch(/prompt left out: commands\/wb-backup-broken\.md: front matter field arguments\.0\.description/);
      expect(check).toMatchObject({ title: 'Check backups', description: 'Check the backups', arguments: [{ name: 'component', description: 'which component to check, e.g. github_backups', required: true }] });
      const got = await client.getPrompt({ name: 'wb-backup-check', arguments: { component: 'github_backups' } });
      expect((got.messages[0]!.content as { text: string }).text).toBe('Call health_status for component: github_backups and tell me what to fix.');
    } finally {
      await client.close();
    }
  });
});
