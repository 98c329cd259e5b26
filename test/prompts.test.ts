import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import matter from 'gray-matter';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, makeNotesDb, REPO_ROOT, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

const text = (r: { messages: Array<{ content: unknown }> }) => (r.messages[0]!.content as { text: string }).text;

describe('slash commands as MCP prompts', () => {
  it('lists both prompts, renders them with and without a snapshot id, and completes ids from the real list', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    const { client, close } = await connectStdio(root);
    try {
      const made: string[] = [];
      for (const manual of [false, true]) {
        const r = await client.callTool({ name: 'data_backup', arguments: { manual } });
        made.push((r.structuredContent as { snapshot_id: string }).snapshot_id);
      }
      const { prompts } = await client.listPrompts();
      expect(prompts.map((p) => p.name).sort()).toEqual(['wb-backup-now', 'wb-backup-recover', 'wb-backup-restore']);
      expect(prompts.find((p) => p.name === 'wb-backup-restore')!.arguments).toEqual([expect.objectContaining({ name: 'snapshot_id', required: false })]);

      expect(text(await client.getPrompt({ name: 'wb-backup-now' }))).toMatch(/data_backup.*manual: true/s);
      const recover = text(await client.getPrompt({ name: 'wb-backup-recover', arguments: { what_was_lost: 'the tasks of project 3' } }));
      expect(recover).toContain('what_was_lost: the tasks of project 3');
      expect(recover).toMatch(/data_backup_list[\s\S]*data_snapshot_diff[\s\S]*data_recover_rows[\s\S]*dry_run: true[\s\S]*confirm_token/);

      const withId = text(await client.getPrompt({ name: 'wb-backup-restore', arguments: { snapshot_id: made[1]! } }));
      expect(withId).toContain(`snapshot_id: ${made[1]}`);
      expect(withId).toMatch(/dry_run: true[\s\S]*confirm_token/);

      const withoutId = text(await client.getPrompt({ name: 'wb-backup-restore', arguments: {} }));
      expect(withoutId).toMatch(/Which one should be restored\?/);
      for (const id of made) expect(withoutId).toContain(id);

      const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'wb-backup-restore' }, argument: { name: 'snapshot_id', value: 'snap-' } });
      expect(completion.completion.values.sort()).toEqual([...made].sort());
      const all = await client.complete({ ref: { type: 'ref/prompt', name: 'wb-backup-restore' }, argument: { name: 'snapshot_id', value: '' } });
      expect(all.completion.values).toContain('latest');
    } finally {
      await close();
    }
  });

  it('the command files are valid Claude Code custom commands, and install-commands copies them', () => {
    for (const name of ['wb-backup-now', 'wb-backup-recover', 'wb-backup-restore']) {
      const parsed = matter(fs.readFileSync(path.join(REPO_ROOT, 'commands', `${name}.md`), 'utf8'));
      expect(parsed.data).toEqual(expect.objectContaining({ description: expect.any(String), 'allowed-tools': expect.stringMatching(/mcp__wb-backup__/) }));
    }
    const project = path.join(root, 'project');
    fs.mkdirSync(project);
    const r = spawnSync(process.execPath, [CLI, 'install-commands', '--project'], { cwd: project, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readdirSync(path.join(project, '.claude', 'commands')).sort()).toEqual(['wb-backup-now.md', 'wb-backup-recover.md', 'wb-backup-restore.md']);
  });
});
