import fs from 'node:fs';
import path from 'node:path';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import YAML from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { healthStatus, runFix } from '../src/health/service.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { connectStdio } from './support/mcp-client.js';

let root: string;
let emu: GithubEmulator;
beforeEach(async () => {
  root = tempRoot();
  emu = await startGithubEmulator();
  makeNotesDb(path.join(root, 'db', 'a.db'), 5);
  writeConfigFile(root, { health: { opt_in: ['github_backups'] } });
});
afterEach(async () => {
  await emu.close();
  rmrf(root);
});

const statusOf = async (ghEnv: Record<string, string>) => {
  const [c] = await healthStatus({ root, ghEnv, cacheMs: 0 }, 'github_backups');
  return Object.fromEntries(c!.requirements.map((r) => [r.id.split('.')[1], { status: r.status, detail: r.detail }])) as Record<string, { status: string; detail: string }>;
};

describe('github_backups with the real gh against the emulator', () => {
  it('gh missing: installed fails, and the two requirements after it are blocked', async () => {
    const s = await statusOf({ ...emu.ghEnv(), PATH: path.join(root, 'no-bin-here') });
    expect(s['gh-cli-installed']).toEqual({ status: 'fail', detail: 'gh is not installed (or not on PATH)' });
    expect(s['gh-authenticated']).toEqual({ status: 'blocked', detail: 'blocked by github_backups.gh-cli-installed' });
    expect(s['repo-configured']).toEqual({ status: 'blocked', detail: 'blocked by github_backups.gh-authenticated' });
  });

  it('not signed in: authenticated fails, the repository is blocked, and the fixer hands off gh auth login --web', async () => {
    const s = await statusOf(emu.ghEnv({ token: null }));
    expect(s['gh-cli-installed']!.status).toBe('ok');
    expect(s['gh-authenticated']!.status).toBe('fail');
    expect(s['gh-authenticated']!.detail).toMatch(/not signed in to github\.localhost/);
    expect(s['repo-configured']!.status).toBe('blocked');
    const fix = await runFix({ root, ghEnv: emu.ghEnv({ token: null }) }, 'github_backups.gh-authenticated');
    expect(fix.status).toBe('handoff');
    expect(fix.handoff!.steps[0]).toMatch(/gh auth login --web --hostname github\.localhost/);
    expect(fix.handoff!.verify).toMatch(/gh auth status/);
  });

  it('the repository fixer creates a private repo through gh, writes the config, and then all requirements are ok', async () => {
    const ghEnv = emu.ghEnv();
    expect((await statusOf(ghEnv))['repo-configured']!.status).toBe('fail');
    const asked = await runFix({ root, ghEnv }, 'github_backups.repo-configured');
    expect(asked.status).toBe('needs_input');
    expect(asked.inputs_schema).toMatchObject({ type: 'object', properties: { repo: { type: 'string' } }, required: ['repo'] });

    const fixed = await runFix({ root, ghEnv }, 'github_backups.repo-configured', { repo: 'agent-backups' });
    expect(fixed).toMatchObject({ status: 'fixed', message: expect.stringMatching(/Created private repository octo\/agent-backups/) });
    expect(emu.repo('octo/agent-backups')).toMatchObject({ isPrivate: true, empty: false });
    const written = YAML.parse(fs.readFileSync(path.join(root, 'wb-backup.yaml'), 'utf8')) as { remote: unknown; health: { opt_in: string[] } };
    expect(written.remote).toEqual({ github: { repo: 'octo/agent-backups' } });
    expect(written.health.opt_in).toEqual(['github_backups']);
    const s = await statusOf(ghEnv);
    expect(Object.values(s).map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
    expect(s['repo-configured']!.detail).toBe('octo/agent-backups (private)');
  });

  it('refuses a public repository, and says why an empty one cannot be used', async () => {
    emu.createRepo('octo/open-data', { private: false });
    emu.createRepo('octo/blank', { empty: true });
    const pub = await runFix({ root, ghEnv: emu.ghEnv() }, 'github_backups.repo-configured', { repo: 'octo/open-data' });
    expect(pub).toMatchObject({ status: 'failed', message: expect.stringMatching(/is public\. Refusing/) });
    const blank = await runFix({ root, ghEnv: emu.ghEnv() }, 'github_backups.repo-configured', { repo: 'octo/blank' });
    expect(blank).toMatchObject({ status: 'failed', message: expect.stringMatching(/empty.*cannot hold releases/) });
    expect(YAML.parse(fs.readFileSync(path.join(root, 'wb-backup.yaml'), 'utf8'))).not.toHaveProperty('remote');
    // A public repo configured by hand is reported, not used silently.
    writeConfigFile(root, { health: { opt_in: ['github_backups'] }, remote: { github: { repo: 'octo/open-data' } } });
    expect((await statusOf(emu.ghEnv()))['repo-configured']).toEqual({ status: 'fail', detail: 'octo/open-data is public: backups go only to a private repository' });
  });

  it('an unwanted component reports unwanted until enabled', async () => {
    writeConfigFile(root, {});
    const [before] = await healthStatus({ root, ghEnv: emu.ghEnv(), cacheMs: 0 }, 'github_backups');
    expect(before!.status).toBe('unwanted');
    expect((await runFix({ root, ghEnv: emu.ghEnv() }, 'github_backups')).status).toBe('fixed');
    const [after] = await healthStatus({ root, ghEnv: emu.ghEnv(), cacheMs: 0 }, 'github_backups');
    expect(after!.status).toBe('fail'); // enabled, and the repository is not configured yet
  });
});

describe('health over MCP', () => {
  it('asks for the repository through elicitation when the client supports it', async () => {
    const prompts: string[] = [];
    const { client, close } = await connectStdio(root, { capabilities: { elicitation: {} } }, emu.ghEnv());
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      prompts.push(String(req.params.message));
      return { action: 'accept', content: { repo: 'eli-backups' } };
    });
    try {
      const status = (await client.callTool({ name: 'health_status', arguments: { component: 'github_backups' } })) as CallToolResult;
      const repoReq = (status.structuredContent as { components: Array<{ requirements: Array<{ id: string; fixer?: { kind: string } }> }> }).components[0]!.requirements.find((r) => r.id === 'github_backups.repo-configured')!;
      expect(repoReq.fixer?.kind).toBe('input_required');
      const fixed = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups.repo-configured' } })) as CallToolResult;
      expect(fixed.isError).toBeFalsy();
      expect(fixed.structuredContent).toMatchObject({ status: 'fixed' });
      expect(prompts[0]).toMatch(/Choose the private repository/);
      expect(emu.repo('octo/eli-backups')?.isPrivate).toBe(true);
      const resource = await client.readResource({ uri: 'health://components' });
      expect(JSON.parse((resource.contents[0] as { text: string }).text).components.map((c: { id: string }) => c.id)).toEqual(expect.arrayContaining(['github_backups', 'local_backups']));
    } finally {
      await close();
    }
  });

  it('without elicitation, answers with the input schema and a message saying what to pass', async () => {
    const { client, close } = await connectStdio(root, {}, emu.ghEnv());
    try {
      const r = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups.repo-configured' } })) as CallToolResult;
      expect(r.structuredContent).toMatchObject({ status: 'needs_input', inputs_schema: { properties: { repo: { type: 'string' } } } });
      expect((r.content[0] as { text: string }).text).toMatch(/call again with inputs/);
      const done = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups.repo-configured', inputs: { repo: 'octo/given' } } })) as CallToolResult;
      expect(done.structuredContent).toMatchObject({ status: 'fixed' });
    } finally {
      await close();
    }
  });
});

describe('a fixer whose requirement is blocked says what blocks it and stops there', () => {
  it('over MCP: isError with status blocked naming the requirement to fix first; no form is shown, nothing is asked of GitHub', async () => {
    const forms: string[] = [];
    const { client, close } = await connectStdio(root, { capabilities: { elicitation: {} } }, emu.ghEnv({ token: null }));
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      forms.push(String(req.params.message));
      return { action: 'accept', content: { repo: 'would-fail' } };
    });
    try {
      const r = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups.repo-configured' } })) as CallToolResult;
      expect(r.isError).toBe(true);
      expect(r.structuredContent).toMatchObject({
        requirement: 'github_backups.repo-configured',
        status: 'blocked',
        blocked_by: [{ id: 'github_backups.gh-authenticated', title: 'gh signed in to GitHub' }],
        message:
          '“Private backup repository configured” is blocked by “gh signed in to GitHub” (github_backups.gh-authenticated): fix that first with health_fix github_backups.gh-authenticated, then run this fix again. Nothing was asked or changed.',
      });
      expect(forms).toEqual([]);
      // With inputs given too: still refused before gh is run.
      const given = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups.repo-configured', inputs: { repo: 'would-fail' } } })) as CallToolResult;
      expect(given.structuredContent).toMatchObject({ status: 'blocked' });
      expect(emu.repo('octo/would-fail')).toBeFalsy();
      // The requirement it names is the one to fix, and it runs.
      const next = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'github_backups.gh-authenticated' } })) as CallToolResult;
      expect(next.isError).toBeFalsy();
      expect(next.structuredContent).toMatchObject({ status: 'handoff' });
    } finally {
      await close();
    }
  });

  it('a chain: the blocker named first is the nearest, the last is the one that actually fails', async () => {
    const ghEnv = { ...emu.ghEnv(), PATH: path.join(root, 'no-bin-here') };
    const r = await runFix({ root, ghEnv }, 'github_backups.repo-configured', { repo: 'would-fail' });
    expect(r).toMatchObject({
      status: 'blocked',
      blocked_by: [
        { id: 'github_backups.gh-authenticated', title: 'gh signed in to GitHub' },
        { id: 'github_backups.gh-cli-installed', title: 'GitHub CLI (gh) installed' },
      ],
    });
    expect(r.message).toBe(
      '“Private backup repository configured” is blocked by “gh signed in to GitHub” (github_backups.gh-authenticated), which waits for “GitHub CLI (gh) installed” (github_backups.gh-cli-installed): fix “GitHub CLI (gh) installed” first with health_fix github_backups.gh-cli-installed, then run this fix again. Nothing was asked or changed.',
    );
    expect(fs.readFileSync(path.join(root, 'wb-backup.yaml'), 'utf8')).not.toMatch(/would-fail/);
  });
});
