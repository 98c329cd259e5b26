import fs from 'node:fs';
import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { chromium } from 'playwright-core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadCapabilities } from '../src/capability/load.js';
import { healthStatus } from '../src/health/service.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { acquireRootLock } from '../src/root/lock.js';
import { loadJobs, type Job } from '../src/sidecar/jobs.js';
import { SidecarRunner } from '../src/sidecar/runner.js';
import { runnerDeps } from '../src/sidecar/service.js';
import { readPollState } from '../src/sync/poll-state.js';
import { syncPoll } from '../src/sync/poll.js';
import { syncPush } from '../src/sync/push.js';
import { readState } from '../src/sync/state.js';
import { configuredTransports } from '../src/sync/transports.js';
import { dumpTables } from './support/db-snapshot.js';
import { git } from './support/bare-remote.js';
import { makeNotesDb, REPO_ROOT, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio, startHttpServerProcess } from './support/mcp-client.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';

let work: string;
let root: string;
let bare: string;
const dbFile = () => path.join(root, 'db', 'notes.db');
const title = (id: number): unknown => {
  const db = new Database(dbFile(), { readonly: true });
  try {
    return db.prepare('SELECT title FROM notes WHERE id = ?').pluck().get(id);
  } finally {
    db.close();
  }
};

/** A commit made in another clone of the mirror, as a person or another machine would push it. */
function pushFromAnotherClone(from: string, to: string): void {
  const other = path.join(work, `other-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  git(work, 'clone', '-q', bare, other);
  const file = path.join(other, 'notes', 'notes.jsonl');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(from, to));
  git(other, 'commit', '-q', '-am', 'edited in another clone');
  git(other, 'push', '-q', 'origin', 'HEAD:main');
}

/** The shipped job file, as the sidecar loads it. */
async function pollJob(): Promise<Job> {
  const { jobs, problems } = loadJobs(path.join(REPO_ROOT, 'sidecar-jobs'), (await loadCapabilities()).map((c) => c.name));
  expect(problems).toEqual([]);
  return jobs.find((j) => j.name === 'github-sync-poll')!;
}

/**
 * The git processes that answered this machine's requests while `fn` ran: every request to a
 * git remote starts a git-upload-pack (read) or git-receive-pack (write) on its side, and
 * GIT_TRACE2_EVENT (inherited by every git that wb-backup runs) logs each start.
 */
async function countRemoteRequests(fn: () => Promise<void>): Promise<{ reads: number; writes: number }> {
  const trace = path.join(work, `trace-${Math.random().toString(36).slice(2)}.json`);
  process.env.GIT_TRACE2_EVENT = trace;
  try {
    await fn();
  } finally {
    delete process.env.GIT_TRACE2_EVENT;
  }
  const starts = fs.existsSync(trace)
    ? fs
        .readFileSync(trace, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { event: string; argv?: string[] })
        .filter((e) => e.event === 'start')
        .map((e) => (e.argv ?? []).slice(0, 2).join(' '))
    : [];
  return { reads: starts.filter((a) => /upload-pack/.test(a)).length, writes: starts.filter((a) => /receive-pack/.test(a)).length };
}

beforeEach(async () => {
  work = tempRoot('wb-sync-poll-');
  root = path.join(work, 'root');
  bare = path.join(work, 'remote.git');
  git(work, 'init', '-q', '--bare', '-b', 'main', bare);
  makeNotesDb(dbFile(), 10);
  writeConfigFile(root, { sync: { poll_minutes: 10, github: { remote_url: bare, branch: 'main' } } });
  await syncPush(loadConfig(root));
});
afterEach(() => {
  vi.useRealTimers();
  rmrf(work);
});

describe('the sidecar notices changes on the git mirror without being asked', () => {
  it('a commit pushed by another clone is pulled within one poll interval, and a poll with nothing changed costs one request and pulls nothing', async () => {
    const job = await pollJob();
    expect(job).toMatchObject({ capability: 'github_sync_poll', requires: null, enabled: true });
    // Only the clock is faked: git and SQLite run for real, and each minute the test waits for the work the tick started.
    vi.useFakeTimers({ now: new Date('2026-11-29T10:00:00Z'), toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    const runner = new SidecarRunner([job], runnerDeps(root));
    const minutes = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await vi.advanceTimersByTimeAsync(60_000);
        await runner.settled();
      }
    };
    runner.start();
    try {
      // First tick: never polled, so due. The remote holds exactly what was pushed.
      const first = await countRemoteRequests(() => minutes(1));
      expect(runner.history).toEqual([expect.objectContaining({ job: 'github-sync-poll', outcome: 'ran', at: '2026-11-29T10:01:00.000Z' })]);
      expect(first).toEqual({ reads: 1, writes: 0 });
      const firstPoll = readPollState(root).transports.git!;
      expect(firstPoll).toMatchObject({ label: 'git:remote.git', at: '2026-11-29T10:01:00.000Z', changed: false, requests: 1, pulled: null, error: null });
      // The next poll is jittered to 80-100% of sync.poll_minutes (10).
      const wait = Date.parse(firstPoll.next_at) - Date.parse(firstPoll.at);
      expect(wait).toBeGreaterThanOrEqual(8 * 60_000);
      expect(wait).toBeLessThanOrEqual(10 * 60_000);

      pushFromAnotherClone('"note 1"', '"edited in another clone"');
      await minutes(10);
      expect(title(2)).toBe('edited in another clone');
      expect(runner.history.map((h) => h.outcome)).toEqual(['ran', 'ran']);
      const changed = readPollState(root).transports.git!;
      expect(changed).toMatchObject({ changed: true, requests: 1, error: null, pulled: { status: 'applied', conflicts: 0, rejected: 0 } });
      const synced = readState(root);
      expect(synced.last_synced_sha).toBe(git(work, '--git-dir', bare, 'rev-parse', 'main'));

      // Nothing changes for a whole interval: one poll, one request, nothing fetched or written.
      const before = dumpTables(dbFile());
      const quiet = await countRemoteRequests(() => minutes(10));
      expect(runner.history.map((h) => h.outcome)).toEqual(['ran', 'ran', 'ran']);
      expect(quiet).toEqual({ reads: 1, writes: 0 });
      expect(readPollState(root).transports.git).toMatchObject({ changed: false, requests: 1, pulled: null, error: null });
      expect(dumpTables(dbFile())).toEqual(before);
      expect(readState(root)).toEqual(synced);
    } finally {
      await runner.stop();
    }
  });

  it('a change the last poll already pulled into conflicts is not pulled again at every poll', async () => {
    pushFromAnotherClone('"note 4"', '"theirs"');
    const db = new Database(dbFile());
    db.exec("UPDATE notes SET title = 'ours' WHERE id = 5");
    db.close();
    const r = await syncPoll(loadConfig(root));
    expect(r.polled).toEqual([expect.objectContaining({ transport: 'git', changed: true, pulled: expect.objectContaining({ status: 'conflicts', conflicts: 1 }) })]);
    const [sync] = await healthStatus({ root, cacheMs: 0, checkNames: false }, 'github_sync');
    expect(sync!.checks).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: 'github_sync.remote-poll', status: 'warn', detail: expect.stringMatching(/left 1 conflict\(s\).*github_sync_resolve/) }),
        expect.objectContaining({ id: 'github_sync.open-conflicts', status: 'warn', detail: expect.stringMatching(/^1 row\(s\) changed both here and on the remote/) }),
      ]),
    );
    const again = await countRemoteRequests(async () => {
      const second = await syncPoll(loadConfig(root));
      expect(second.polled).toEqual([expect.objectContaining({ changed: false, requests: 1, pulled: null })]);
    });
    expect(again).toEqual({ reads: 1, writes: 0 });
    expect(title(5)).toBe('ours');
  });

  it('a poll that cannot reach the remote (it is gone) shows in health and in the sidecar history', async () => {
    fs.renameSync(bare, `${bare}-moved`);
    const job = await pollJob();
    const runner = new SidecarRunner([job], runnerDeps(root));
    await runner.fire(job, 'scheduled');
    expect(runner.history).toEqual([expect.objectContaining({ outcome: 'failed', detail: expect.stringMatching(/git:remote\.git: the poll failed: git ls-remote failed/) })]);
    expect(readPollState(root).transports.git).toMatchObject({ changed: null, requests: 0, error: { code: 'sync_failed', message: expect.stringMatching(/ls-remote failed/) } });
    const [sync] = await healthStatus({ root, cacheMs: 0, checkNames: false }, 'github_sync');
    expect(sync!.status).toBe('fail');
    expect(sync!.checks).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: 'github_sync.remote-poll', status: 'fail', detail: expect.stringMatching(/^git:remote\.git: the poll \d+ min ago failed: git ls-remote failed/) })]),
    );
  });

  it('a change found while a backup holds the data root is pulled at the next poll a minute later, and health says it waits', async () => {
    pushFromAnotherClone('"note 2"', '"while busy"');
    const lock = await acquireRootLock(root, 'backup', 0);
    let busy;
    try {
      busy = await syncPoll(loadConfig(root), { now: new Date('2026-11-29T10:00:00Z') });
    } finally {
      await lock.release();
    }
    expect(busy.polled).toEqual([expect.objectContaining({ changed: true, pulled: null, error: expect.objectContaining({ code: 'busy' }), next_at: '2026-11-29T10:01:00.000Z' })]);
    expect(title(3)).toBe('note 2');
    const [sync] = await healthStatus({ root, cacheMs: 0, checkNames: false }, 'github_sync');
    expect(sync!.checks).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'github_sync.remote-poll', status: 'warn', detail: expect.stringMatching(/found the data root busy and is tried again/) })]));
    const later = await syncPoll(loadConfig(root), { dueOnly: true, now: new Date('2026-11-29T10:01:00Z') });
    expect(later.polled).toEqual([expect.objectContaining({ changed: true, error: null, pulled: expect.objectContaining({ status: 'applied' }) })]);
    expect(title(3)).toBe('while busy');
  });

  it('nothing is asked while github_sync is turned off, and a tick before the next poll is due does nothing', async () => {
    const job = await pollJob();
    writeConfigFile(root, { sync: { poll_minutes: 10, github: { remote_url: bare, branch: 'main' } }, health: { disabled: ['github_sync'] } });
    const off = new SidecarRunner([job], runnerDeps(root));
    const quiet = await countRemoteRequests(() => off.fire(job, 'scheduled'));
    expect(quiet).toEqual({ reads: 0, writes: 0 });
    expect(off.history).toEqual([]);
    expect(readPollState(root).transports).toEqual({});

    writeConfigFile(root, { sync: { poll_minutes: 10, github: { remote_url: bare, branch: 'main' } } });
    const on = new SidecarRunner([job], runnerDeps(root));
    await on.fire(job, 'scheduled');
    await on.fire(job, 'scheduled'); // the next poll is 8-10 minutes away: this tick does nothing
    expect(on.history).toEqual([expect.objectContaining({ outcome: 'ran' })]);
  });
});

describe('transports', () => {
  it('the git mirror is the one configured transport, and the registry says so', () => {
    expect(configuredTransports(loadConfig(root)).map((t) => [t.id, t.label])).toEqual([['git', 'git:remote.git']]);
    writeConfigFile(root, {});
    expect(configuredTransports(loadConfig(root))).toEqual([]);
  });

  it('github_sync_status over MCP lists each transport with its last poll', async () => {
    await syncPoll(loadConfig(root));
    const { client, close } = await connectStdio(root);
    try {
      const r = (await client.callTool({ name: 'github_sync_status', arguments: {} })) as CallToolResult;
      expect(r.isError).toBeFalsy();
      expect(r.structuredContent).toMatchObject({
        configured: true,
        transports: [{ transport: 'git', label: 'git:remote.git', last_poll: { changed: false, requests: 1, pulled: null, error: null } }],
      });
      expect((r.content[0] as { text: string }).text).toMatch(/git:remote\.git last polled \d+ min ago: no change\./);
    } finally {
      await close();
    }
  });
});

describe('polling a mirror on GitHub (emulator, real git over HTTPS, real gh)', () => {
  const REPO = 'octo/agent-data';
  let emu: GithubEmulator;
  let env: Record<string, string>;
  beforeEach(async () => {
    emu = await startGithubEmulator();
    emu.createRepo(REPO, { defaultBranch: 'trunk' });
    env = emu.gitEnv();
    writeConfigFile(root, { sync: { github: { repo: REPO } } });
    fs.rmSync(path.join(root, 'sync'), { recursive: true, force: true });
    await syncPush(loadConfig(root), { env });
  });
  afterEach(async () => {
    await emu.close();
  });

  it('one ref listing of the default branch when nothing changed (no API call, nothing fetched); an edit pushed there is pulled', async () => {
    const n = emu.requests.length;
    const quiet = await syncPoll(loadConfig(root), { env });
    expect(quiet.polled).toEqual([expect.objectContaining({ label: `git:${REPO}`, changed: false, requests: 1, pulled: null, error: null })]);
    const seen = emu.requests.slice(n).filter((r) => r.method !== 'CONNECT');
    // git's one ls-remote: the ref advertisement (with its authentication round trip) and the ls-refs command; no pack is fetched.
    expect(seen.every((r) => r.path.startsWith(`/${REPO}.git/`))).toBe(true);
    expect(seen.map((r) => r.path)).toContain(`/${REPO}.git/info/refs?service=git-upload-pack`);
    expect(seen.filter((r) => r.method === 'POST').length).toBeLessThanOrEqual(1);

    const clone = path.join(work, 'gh-clone');
    const gitGh = async (cwd: string, ...args: string[]) => {
      const r = await execa('git', ['-c', 'credential.helper=', '-c', 'credential.helper=!gh auth git-credential', '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd, env, extendEnv: false, reject: false });
      if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    };
    await gitGh(work, 'clone', '-q', emu.cloneUrl(REPO), clone);
    const file = path.join(clone, 'notes', 'notes.jsonl');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"note 6"', '"edited on GitHub"'));
    await gitGh(clone, 'commit', '-q', '-am', 'edit on GitHub');
    await gitGh(clone, 'push', '-q', 'origin', 'HEAD:trunk');
    const changed = await syncPoll(loadConfig(root), { env });
    expect(changed.polled).toEqual([expect.objectContaining({ changed: true, requests: 1, pulled: expect.objectContaining({ status: 'applied' }) })]);
    expect(title(7)).toBe('edited on GitHub');
  });
});

describe('the health card', () => {
  it('shows a failed poll of the sync remote on the github-sync component', async () => {
    fs.renameSync(bare, `${bare}-moved`);
    const polled = await syncPoll(loadConfig(root));
    expect(polled.polled[0]!.error).not.toBeNull();
    const server = await startHttpServerProcess(root);
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/`);
      const row = page.locator('[data-check="github_sync.remote-poll"]');
      await expect.poll(() => row.locator('.badge').first().getAttribute('data-status'), { timeout: 30_000 }).toBe('fail');
      expect(await row.locator('.detail').first().textContent()).toMatch(/^git:remote\.git: the poll \d+ min ago failed: git ls-remote failed/);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});
