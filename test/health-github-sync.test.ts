// github-sync set up with tool calls alone: from "unwanted" to a first push, over the MCP SDK client
// against the built server, with real git against local bare repositories and real gh against the
// GitHub emulator.
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import YAML from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { healthStatus, runFix } from '../src/health/service.js';
import { loadConfig } from '../src/root/config.js';
import { syncPush } from '../src/sync/push.js';
import { emptyBareRemote, git } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { connectStdio } from './support/mcp-client.js';

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown>; content: Array<{ type: string; text?: string }> };
type Report = { id: string; status: string; requirements: Array<{ id: string; status: string; detail: string; fixer?: { kind: string; inputs?: { properties?: Record<string, unknown> } } }>; checks: Array<{ id: string; status: string; detail: string }> };

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-sync-setup-');
  root = path.join(work, 'root');
  makeNotesDb(path.join(root, 'db', 'notes.db'), 8);
});
afterEach(() => rmrf(work));

const call = async (client: Client, name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as ToolResult;
const syncReport = async (client: Client): Promise<Report> => ((await call(client, 'health_status', { component: 'github_sync' })).structuredContent!.components as Report[])[0]!;
const yamlOf = () => YAML.parse(fs.readFileSync(path.join(root, 'wb-backup.yaml'), 'utf8')) as { sync?: { github: Record<string, unknown> }; health?: { opt_in?: string[] } };

/**
 * The agent's walk, with names and arguments taken from earlier results: github_sync is unwanted,
 * health_fix enables it, its repository requirement asks for inputs, they are given, the first
 * push to the empty remote succeeds, and github_sync is ok.
 */
async function walkToFirstPush(client: Client, inputsFor: (schema: Record<string, unknown>) => Record<string, unknown>): Promise<{ setup: ToolResult; push: ToolResult; after: Report }> {
  const before = await syncReport(client);
  expect(before.status).toBe('unwanted');

  const enabled = await call(client, 'health_fix', { requirement: before.id });
  expect(enabled.isError).toBeFalsy();
  expect(enabled.structuredContent).toMatchObject({ status: 'fixed' });

  const open = await syncReport(client);
  expect(open.status).toBe('fail');
  const failing = open.requirements.find((r) => r.status === 'fail')!;
  expect(failing.fixer?.kind).toBe('input_required');
  expect(open.requirements.find((r) => r.status === 'blocked')?.detail).toBe(`blocked by ${failing.id}`);

  const asked = await call(client, 'health_fix', { requirement: failing.id });
  expect(asked.isError).toBeFalsy();
  expect(asked.structuredContent).toMatchObject({ status: 'needs_input', inputs_schema: { properties: { repo: expect.any(Object), remote_url: expect.any(Object), branch: expect.any(Object) } } });

  const setup = await call(client, 'health_fix', { requirement: failing.id, inputs: inputsFor(asked.structuredContent!.inputs_schema as Record<string, unknown>) });
  expect(setup.isError).toBeFalsy();
  expect(setup.structuredContent).toMatchObject({ status: 'fixed', message: expect.stringMatching(/no commits yet: the first push \(github_sync_push\) creates branch/) });

  const ready = await syncReport(client);
  expect(ready.requirements.map((r) => r.status)).toEqual(['ok', 'ok']);
  expect(ready.requirements[1]!.detail).toMatch(/^reachable and empty: the first push creates branch /);
  expect(ready.checks[0]).toMatchObject({ status: 'warn', detail: expect.stringMatching(/never synced: run github_sync_push/) });

  const push = await call(client, 'github_sync_push', {});
  expect(push.isError).toBeFalsy();
  expect(push.structuredContent).toMatchObject({ status: 'pushed' });
  const after = await syncReport(client);
  expect(after.status).toBe('ok');
  return { setup, push, after };
}

describe('github-sync from unwanted to a first push, over MCP', () => {
  it('to an empty bare remote that names its unborn branch: the first push creates that branch, and the remote HEAD then resolves', async () => {
    const bare = emptyBareRemote(work, { unbornHead: 'trunk' });
    const { client, close } = await connectStdio(root);
    try {
      const { setup, push, after } = await walkToFirstPush(client, () => ({ remote_url: bare }));
      expect(setup.structuredContent!.message).toMatch(/creates branch trunk, written to sync\.github\.branch/);
      expect(push.structuredContent).toMatchObject({ branch: 'trunk' });
      expect(after.requirements[1]!.detail).toBe('default branch trunk');
      expect(yamlOf()).toMatchObject({ sync: { github: { remote_url: bare, branch: 'trunk' } }, health: { opt_in: ['github_sync'] } });
      // A person's clone gets the mirror on the checked-out default branch.
      const clone = path.join(work, 'clone');
      git(work, 'clone', '-q', bare, clone);
      expect(git(clone, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('trunk');
      expect(fs.existsSync(path.join(clone, 'notes', 'notes.jsonl'))).toBe(true);
    } finally {
      await close();
    }
  });

  it('to an empty bare remote that does not say: the branch defaults to main and is recorded', async () => {
    const bare = emptyBareRemote(work, { unbornHead: 'trunk', tellHead: false });
    const { client, close } = await connectStdio(root);
    try {
      const { setup, push } = await walkToFirstPush(client, () => ({ remote_url: bare }));
      expect(setup.structuredContent!.message).toMatch(/creates branch main, written to sync\.github\.branch/);
      expect(push.structuredContent).toMatchObject({ branch: 'main' });
      expect(yamlOf().sync!.github).toMatchObject({ remote_url: bare, branch: 'main' });
      expect(git(work, 'ls-remote', '--heads', bare)).toMatch(/refs\/heads\/main$/);
    } finally {
      await close();
    }
  });

  describe('with the GitHub emulator', () => {
    let emu: GithubEmulator;
    beforeEach(async () => {
      emu = await startGithubEmulator();
    });
    afterEach(async () => emu.close());

    it('a repository name: created private and empty through gh, then the first push creates its default branch', async () => {
      const { client, close } = await connectStdio(root, {}, emu.gitEnv());
      try {
        const { setup, push } = await walkToFirstPush(client, () => ({ repo: 'agent-mirror' }));
        expect(setup.structuredContent!.message).toMatch(/^Created private repository octo\/agent-mirror for the mirror\. It has no commits yet: the first push \(github_sync_push\) creates branch main\.$/);
        expect(push.structuredContent).toMatchObject({ branch: 'main' });
        // GitHub's own default branch is used, so nothing is pinned in the configuration.
        expect(yamlOf().sync!.github).toEqual({ repo: 'octo/agent-mirror' });
        expect(emu.repo('octo/agent-mirror')).toMatchObject({ isPrivate: true, empty: false, defaultBranch: 'main' });
      } finally {
        await close();
      }
    });

    it('refuses a public repository for the mirror and writes nothing', async () => {
      emu.createRepo('octo/open', { private: false });
      const ghEnv = emu.gitEnv();
      const r = await runFix({ root, ghEnv }, 'github_sync.repo-configured', { repo: 'octo/open' });
      expect(r).toMatchObject({ status: 'failed', message: expect.stringMatching(/octo\/open is public.*Refusing/) });
      expect(fs.existsSync(path.join(root, 'wb-backup.yaml'))).toBe(false);
    });
  });

  it('an unreachable remote is refused by the fixer, and nothing is written', async () => {
    const r = await runFix({ root }, 'github_sync.repo-configured', { remote_url: path.join(work, 'nowhere.git') });
    expect(r).toMatchObject({ status: 'failed', message: expect.stringMatching(/^git cannot reach .*nowhere\.git: .*nothing was written\.$/) });
    expect(fs.existsSync(path.join(root, 'wb-backup.yaml'))).toBe(false);
  });

  it('needs repo or remote_url: an empty answer says which inputs are missing', async () => {
    const r = await runFix({ root }, 'github_sync.repo-configured', { branch: 'main' });
    expect(r).toMatchObject({ status: 'needs_input', message: expect.stringMatching(/give repo \(a GitHub repository\) or remote_url/) });
  });

  it('health and push agree on an empty remote configured by hand (no branch set): reachable, and the push succeeds', async () => {
    const bare = emptyBareRemote(work, { tellHead: false });
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `sync:\n  github:\n    remote_url: ${bare}\n`);
    const [report] = await healthStatus({ root, cacheMs: 0 }, 'github_sync');
    expect(report!.requirements[1]).toMatchObject({ status: 'ok', detail: 'reachable and empty: the first push creates branch main' });
    const pushed = await syncPush(loadConfig(root));
    expect(pushed).toMatchObject({ status: 'pushed', branch: 'main' });
  });
});
