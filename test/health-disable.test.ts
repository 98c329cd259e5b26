// Turning an opt-in component off and on again: over MCP (the SDK client against the built server),
// on the CLI, and what stops with it (sidecar jobs that need it, pushes to GitHub). Real git, real
// SQLite, the real pipeline; no GitHub call is made for a component that is off.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { healthStatus, setComponentEnabled } from '../src/health/service.js';
import { loadConfig } from '../src/root/config.js';
import { blockedReason } from '../src/sidecar/service.js';
import { directSyncRemote } from './support/bare-remote.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown>; content: Array<{ type: string; text?: string }> };

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-disable-');
  root = path.join(work, 'root');
  makeNotesDb(path.join(root, 'db', 'notes.db'), 6);
});
afterEach(() => rmrf(work));

const configText = () => fs.readFileSync(path.join(root, 'wb-backup.yaml'), 'utf8');
const syncJob = { name: 'sync', file: 'sync.md', description: '', schedule: '0 * * * *', capability: 'github_sync_push', args: {}, requires: 'github_sync', enabled: true, catch_up: true };

describe('turning a component off and on over MCP', () => {
  it('github_sync configured by hand: off stops reporting it and its jobs, keeps the settings and says so; on brings it back', async () => {
    directSyncRemote(work, root);
    fs.appendFileSync(path.join(root, 'wb-backup.yaml'), '# my own note about the mirror\n');
    const { client, close } = await connectStdio(root);
    try {
      const tool = (await client.listTools()).tools.find((t) => t.name === 'health_set_enabled')!;
      expect(tool.description).toMatch(/Nothing is deleted/);
      expect(tool.annotations).toMatchObject({ destructiveHint: false });
      const status = async () => (((await client.callTool({ name: 'health_status', arguments: { component: 'github_sync' } })) as ToolResult).structuredContent!.components as Array<{ status: string; disabled?: boolean }>)[0]!;
      expect((await status()).status).not.toBe('unwanted');

      const off = (await client.callTool({ name: 'health_set_enabled', arguments: { component: 'github_sync', enabled: false } })) as ToolResult;
      expect(off.isError).toBeFalsy();
      expect(off.structuredContent).toMatchObject({ component: 'github_sync', enabled: false, changed: true });
      // Said plainly: what stops, what is kept, and that nothing was deleted.
      expect(off.structuredContent!.message).toMatch(/is off: it is no longer checked or reported, and sidecar jobs that need it skip\./);
      expect(off.structuredContent!.message).toMatch(/The mirror in remote\.git and the local clone under the data root are kept as they are\./);
      expect(off.structuredContent!.message).toMatch(/Nothing was deleted/);
      expect(await status()).toMatchObject({ status: 'unwanted', disabled: true });
      expect(await blockedReason(root, syncJob)).toMatch(/not enabled/);
      // The settings and the person's comment are kept; only health.disabled is added.
      expect(configText()).toMatch(/remote_url: .*remote\.git/);
      expect(configText()).toMatch(/# my own note about the mirror/);
      expect(YAML.parse(configText()).health).toEqual({ disabled: ['github_sync'] });

      const again = (await client.callTool({ name: 'health_set_enabled', arguments: { component: 'github_sync', enabled: false } })) as ToolResult;
      expect(again.structuredContent).toMatchObject({ changed: false, message: expect.stringMatching(/already off/) });

      const on = (await client.callTool({ name: 'health_set_enabled', arguments: { component: 'github_sync', enabled: true } })) as ToolResult;
      expect(on.structuredContent).toMatchObject({ enabled: true, changed: true });
      const back = await status();
      expect(back.status).not.toBe('unwanted');
      expect(back.disabled).toBeUndefined();
      expect(await blockedReason(root, syncJob)).toBeNull();
      expect(YAML.parse(configText()).health.disabled).toBeUndefined();
    } finally {
      await close();
    }
  });

  it('the core component cannot be turned off, and an unknown one is named as such: both are error results', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const core = (await client.callTool({ name: 'health_set_enabled', arguments: { component: 'local_backups', enabled: false } })) as ToolResult;
      expect(core.isError).toBe(true);
      expect(core.content[0]!.text).toMatch(/core of wb-backup and cannot be turned off/);
      const unknown = (await client.callTool({ name: 'health_set_enabled', arguments: { component: 'nope', enabled: false } })) as ToolResult;
      expect(unknown.isError).toBe(true);
      expect(unknown.content[0]!.text).toMatch(/no health component "nope"/);
      expect(fs.existsSync(path.join(root, 'wb-backup.yaml'))).toBe(false);
    } finally {
      await close();
    }
  });

  it('an opt-in component turned off by mistake comes back with health_fix <component> too', async () => {
    await setComponentEnabled({ root }, 'github_backups', false);
    const [off] = await healthStatus({ root, cacheMs: 0 }, 'github_backups');
    expect(off).toMatchObject({ status: 'unwanted', disabled: true });
    const { client, close } = await connectStdio(root);
    try {
      const r = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups' } })) as ToolResult;
      expect(r.structuredContent).toMatchObject({ status: 'fixed', message: expect.stringMatching(/is enabled/) });
    } finally {
      await close();
    }
    expect(YAML.parse(configText()).health).toEqual({ opt_in: ['github_backups'] });
  });
});

describe('GitHub copies turned off', () => {
  it('a snapshot stays local and says why; the remote setting is kept; no GitHub call is made', async () => {
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'remote:\n  github:\n    repo: octo/backups\n');
    const off = await setComponentEnabled({ root }, 'github_backups', false);
    expect(off.message).toMatch(/New snapshots are no longer pushed to octo\/backups: they stay on this machine only\. The releases already on octo\/backups are kept/);
    // gh is not reachable here at all: a push attempt would fail, not skip.
    const result = await runBackup(loadConfig(root), { manual: true });
    expect(result.remote).toEqual({ status: 'skipped', reason: 'GitHub copies are turned off (health.disabled in wb-backup.yaml); the snapshot is local only.' });
    expect(YAML.parse(configText())).toMatchObject({ remote: { github: { repo: 'octo/backups' } }, health: { disabled: ['github_backups'] } });
  });
});

describe('on the CLI', () => {
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'error' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('health disable / enable turn a component off and on, in the CLI\'s own words', () => {
    directSyncRemote(work, root);
    const off = cli(['health', 'disable', 'github_sync']);
    expect(off.code).toBe(0);
    expect(off.stdout).toMatch(/^off: Readable data mirror \(github-sync\) is off: .*Nothing was deleted/);
    expect(off.stdout).toMatch(/`wb-backup sync push` and `wb-backup sync pull` still work when called/);
    expect(off.stdout).not.toMatch(/github_sync_push|health_set_enabled/);
    const shown = cli(['health']);
    expect(shown.stdout).toMatch(/\[github_sync\]: unwanted\n\s+turned off — turn on again with: wb-backup health enable github_sync/);
    const on = cli(['health', 'enable', 'github_sync']);
    expect(on.code).toBe(0);
    expect(on.stdout).toMatch(/^on: Readable data mirror \(github-sync\) is on/);
    expect(cli(['health']).stdout).toMatch(/\[github_sync\]: (ok|warn|fail)\n\s+\(turn off with: wb-backup health disable github_sync\)/);
    const core = cli(['health', 'disable', 'local_backups']);
    expect(core.code).toBe(2);
    expect(core.stderr).toMatch(/cannot be turned off/);
  });
});
