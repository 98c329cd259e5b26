// The GitHub Issues sync transport against the GitHub emulator with the real gh: task rows as
// issues, child rows as comments, a person's edits on GitHub pulled back, conflicts, rate limits
// and interrupted creations resumed without duplicates.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError } from '../src/core/errors.js';
import { issuesTransport } from '../src/sync/issues/transport.js';
import { syncPoll } from '../src/sync/poll.js';
import { configuredTransports } from '../src/sync/transports.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { rmrf, tempRoot } from './support/fixtures.js';

let emu: GithubEmulator;
let env: Record<string, string>;
let work: string;
let root: string;
const REPO = 'octo/team-tasks';
const STATUSES = ['open', 'in_progress', 'done', 'cancelled'];

beforeEach(async () => {
  emu = await startGithubEmulator();
  emu.createRepo(REPO);
  env = emu.ghEnv();
  work = tempRoot('wb-sync-issues-');
  root = path.join(work, 'root');
});
afterEach(async () => {
  await emu.close();
  rmrf(work);
});

const dbFile = () => path.join(root, 'db', 'tasks.db');

/** `n` tasks; every 5th has two comments. */
function makeTasks(n: number): void {
  fs.mkdirSync(path.dirname(dbFile()), { recursive: true });
  const db = new Database(dbFile());
  db.exec(`
    CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, description TEXT, status TEXT NOT NULL DEFAULT 'open', priority TEXT, kind TEXT, tags TEXT);
    CREATE TABLE task_comments (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL REFERENCES tasks(id), body TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT 'now');
  `);
  const add = db.prepare('INSERT INTO tasks (id, title, description, status, priority, kind, tags) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const comment = db.prepare('INSERT INTO task_comments (task_id, body) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= n; i++) {
      add.run(i, `Task ${i}`, i % 3 ? `Details of task ${i}.\n\n- step one\n- step two` : null, STATUSES[i % 4], i % 2 ? 'high' : 'low', i % 7 ? 'task' : 'bug', i % 4 ? 'backend, api' : null);
      if (i % 5 === 0) {
        comment.run(i, `First note on ${i}`);
        comment.run(i, `Second note on ${i}`);
      }
    }
  })();
  db.close();
}

function configure(parallel = 4): void {
  writeConfigFile(root, {
    sync: {
      issues: {
        repo: REPO,
        parallel,
        max_wait_seconds: 5,
        tables: {
          'tasks.tasks': {
            title: 'title',
            body: 'description',
            state: { column: 'status', closed: ['done', 'cancelled'] },
            priority: 'priority',
            type: 'kind',
            labels: 'tags',
            comments: { table: 'task_comments', parent: 'task_id', body: 'body' },
          },
        },
      },
    },
  });
}

const transport = () => issuesTransport(loadConfig(root));
const task = (id: number) => {
  const db = new Database(dbFile(), { readonly: true });
  try {
    return db.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as Record<string, unknown>;
  } finally {
    db.close();
  }
};
const sql = (text: string, ...args: unknown[]) => {
  const db = new Database(dbFile());
  try {
    return db.prepare(text).run(...args);
  } finally {
    db.close();
  }
};
/** The issue of task `id`, found by its hidden key. */
const issueOf = (id: number) => emu.repo(REPO)!.issues.find((i) => (i.body ?? '').includes(`"key":{"id":${id}}`))!;
const posts = (re: RegExp) => emu.requests.filter((r) => r.method === 'POST' && re.test(r.path));

describe('task tables as GitHub issues (emulator, real gh)', () => {
  it('pushes 500 tasks with comments as issues, pulls a person\'s edits back, reports a row edited on both sides, and never touches issues it does not manage', async () => {
    makeTasks(500);
    configure();
    const handMade = emu.createIssue(REPO, { title: 'Office plants need water', body: 'made by hand', labels: ['chore'] });
    const handLabelled = emu.createIssue(REPO, { title: 'Labelled by hand', labels: ['wb:managed'] });
    expect(configuredTransports(loadConfig(root)).map((t) => t.label)).toEqual(['issues:octo/team-tasks']);
    const preexisting = emu.repo(REPO)!.labels; // 'chore' and 'wb:managed', made with the hand-made issues

    const pushed = await transport().push({ env });
    expect(pushed).toMatchObject({ status: 'pushed', issues: { created: 500, updated: 0, adopted: 0 }, comments: { created: 200 } });
    const repo = emu.repo(REPO)!;
    const managed = repo.issues.filter((i) => i.labels.includes('wb:managed') && i.body?.includes('<!-- wb:'));
    expect(managed).toHaveLength(500);
    expect(repo.comments).toHaveLength(200);
    const t10 = issueOf(10); // status done (10 % 4 = 2), priority low, kind task, no tags (10 % 4 != 0 → tags)
    expect(t10).toMatchObject({ title: 'Task 10', state: 'closed' });
    expect(t10.labels).toEqual(['wb:managed', 'state:done', 'priority:low', 'type:task', 'api', 'backend']);
    expect(t10.body).toBe('Details of task 10.\n\n- step one\n- step two\n\n<!-- wb:{"db":"tasks","table":"tasks","key":{"id":10}} -->');
    expect(repo.comments.filter((c) => c.issue_number === t10.number).map((c) => c.body.split('\n')[0])).toEqual(['First note on 10', 'Second note on 10']);
    expect(repo.labels).toEqual(expect.arrayContaining(['wb:managed', 'state:open', 'state:in_progress', 'state:done', 'state:cancelled', 'priority:high', 'priority:low', 'type:bug', 'type:task']));
    // first use: each label created once
    expect(posts(/\/labels$/).length).toBe(repo.labels.length - preexisting.length);

    // Nothing changed: a second push sends nothing, and a poll is one request that sees nothing new.
    const before = emu.requests.length;
    const again = await transport().push({ env });
    expect(again).toMatchObject({ status: 'no_changes', issues: { created: 0, updated: 0, unchanged: 500 } });
    expect(emu.requests.slice(before).filter((r) => r.method !== 'GET')).toEqual([]);
    const quiet = await transport().poll({ env });
    expect(quiet).toMatchObject({ changed: false, requests: 1 });

    // A person on GitHub: renames task 1, raises task 2's priority, closes task 8, comments on task 4.
    await new Promise((r) => setTimeout(r, 1100)); // GitHub's clock has whole seconds
    emu.editIssue(REPO, issueOf(1).number, { title: 'Task 1, reworded on GitHub' });
    emu.editIssue(REPO, issueOf(2).number, { removeLabels: ['priority:low'], addLabels: ['priority:high'] });
    emu.editIssue(REPO, issueOf(8).number, { state: 'closed' });
    emu.addComment(REPO, issueOf(4).number, 'Blocked on the API review.');
    // The same row edited on both sides: task 5 renamed here and on GitHub.
    emu.editIssue(REPO, issueOf(5).number, { title: 'Task 5 (GitHub)' });
    sql('UPDATE tasks SET title = ? WHERE id = 5', 'Task 5 (agent)');
    // The hand-made issues change too: still never touched.
    emu.editIssue(REPO, handMade, { title: 'Office plants need water today' });

    const noticed = await transport().poll({ env });
    expect(noticed).toMatchObject({ changed: true, requests: 1 });

    const pulled = await transport().pull({ env });
    expect(pulled.status).toBe('conflicts');
    expect(pulled.conflict_count).toBe(1);
    expect(pulled.conflicts[0]).toMatchObject({ table: 'tasks.tasks', key: '{"id":5}', issue: issueOf(5).number });
    expect(pulled.conflicts[0]!.ours).toContain('Task 5 (agent)');
    expect(pulled.conflicts[0]!.theirs).toContain('Task 5 (GitHub)');
    expect(task(1).title).toBe('Task 1, reworded on GitHub');
    expect(task(2).priority).toBe('high');
    expect(task(8).status).toBe('done'); // was open, closed on GitHub: the first closed value
    expect(task(5).title).toBe('Task 5 (agent)'); // never overwritten
    const db = new Database(dbFile(), { readonly: true });
    const c4 = db.prepare('SELECT task_id, body, created_at FROM task_comments WHERE task_id = 4').all();
    db.close();
    expect(c4).toEqual([{ task_id: 4, body: 'Blocked on the API review.', created_at: 'now' }]);
    // What the pull read (the conflict included) is not reported again by the next poll.
    expect(await transport().poll({ env })).toMatchObject({ changed: false, requests: 1 });

    // The next push sends what the pull changed (task 8's labels), leaves the conflicting row and its issue alone.
    const mark = emu.requests.length;
    const after = await transport().push({ env });
    expect(after).toMatchObject({ status: 'pushed', conflicted: 1, issues: { created: 0 }, comments: { created: 0 } });
    expect(issueOf(5).title).toBe('Task 5 (GitHub)');
    expect(issueOf(8).labels).toContain('state:done');
    expect(issueOf(8).labels).not.toContain('state:open');
    expect(issueOf(1).title).toBe('Task 1, reworded on GitHub');
    const patched = emu.requests.slice(mark).filter((r) => r.method === 'PATCH').map((r) => Number(/\/issues\/(\d+)$/.exec(r.path)?.[1]));
    expect(patched).not.toContain(handMade);
    expect(patched).not.toContain(handLabelled);
    expect(patched).not.toContain(issueOf(5).number);
    // hand-made issues: as the person left them
    expect(emu.repo(REPO)!.issues.find((i) => i.number === handMade)).toMatchObject({ title: 'Office plants need water today', labels: ['chore'], body: 'made by hand' });
    expect(emu.repo(REPO)!.issues.find((i) => i.number === handLabelled)).toMatchObject({ title: 'Labelled by hand', body: null });
    // no issue made twice
    expect(emu.repo(REPO)!.issues).toHaveLength(502);

    expect(await transport().poll({ env })).toMatchObject({ changed: false, requests: 1 });
    const status = await transport().status({ env });
    expect(status).toMatchObject({ configured: true, tracked_issues: 500, conflicts: 1 });
  }, 300_000);

  it('a deleted task closes its issue with wb:deleted; a deleted child row deletes its comment', async () => {
    makeTasks(10);
    configure(1);
    await transport().push({ env });
    const number = issueOf(6).number;
    sql('DELETE FROM task_comments WHERE task_id = 5');
    sql('DELETE FROM tasks WHERE id = 5');
    sql('DELETE FROM tasks WHERE id = 6');
    const r = await transport().push({ env });
    expect(r).toMatchObject({ status: 'pushed', issues: { closed_deleted: 2 }, comments: { deleted: 2 } });
    const closed = emu.repo(REPO)!.issues.find((i) => i.number === number)!;
    expect(closed.state).toBe('closed');
    expect(closed.labels).toContain('wb:deleted');
    expect(emu.repo(REPO)!.issues).toHaveLength(10);
    expect(emu.repo(REPO)!.comments.filter((c) => c.issue_number === issueOf(5).number)).toEqual([]);
  }, 120_000);

  it('a rate-limit answer in the middle of a push is waited out, and the push finishes without a duplicate issue', async () => {
    makeTasks(30);
    configure(1);
    // The first 12 issue creations pass, the 13th gets a secondary rate limit (Retry-After: 1), the 20th a primary one (reset in 1 s).
    emu.inject({ kind: 'delay', ms: 0, times: 12, match: { method: 'POST', path: /\/issues$/ } });
    emu.inject({ kind: 'rate_limit', limit: 'secondary', retryAfterSeconds: 1, match: { method: 'POST', path: /\/issues$/ } });
    emu.inject({ kind: 'delay', ms: 0, times: 6, match: { method: 'POST', path: /\/issues$/ } });
    emu.inject({ kind: 'rate_limit', limit: 'primary', resetInSeconds: 1, match: { method: 'POST', path: /\/issues$/ } });
    const r = await transport().push({ env });
    expect(r).toMatchObject({ status: 'pushed', issues: { created: 30 } });
    expect(r.rate_limit_waited_seconds).toBeGreaterThanOrEqual(2);
    const limited = emu.requests.filter((q) => q.fault === 'rate_limit');
    expect(limited.map((q) => q.status)).toEqual([403, 403]);
    const issues = emu.repo(REPO)!.issues;
    expect(issues).toHaveLength(30);
    expect(new Set(issues.map((i) => i.title)).size).toBe(30);
  }, 120_000);

  it('a creation GitHub accepted but whose answer was lost is found by its hidden key, not created again', async () => {
    makeTasks(12);
    configure(1);
    emu.inject({ kind: 'delay', ms: 0, times: 4, match: { method: 'POST', path: /\/issues$/ } });
    emu.inject({ kind: 'lose_response', match: { method: 'POST', path: /\/issues$/ } });
    const r = await transport().push({ env });
    expect(r).toMatchObject({ status: 'pushed', issues: { created: 12, adopted: 1 } });
    const issues = emu.repo(REPO)!.issues;
    expect(issues).toHaveLength(12);
    expect(new Set(issues.map((i) => i.title)).size).toBe(12);
  }, 120_000);

  it('a push stopped by a rate limit longer than max_wait_seconds resumes on the next push without duplicates', async () => {
    makeTasks(20);
    configure(1);
    emu.inject({ kind: 'delay', ms: 0, times: 8, match: { method: 'POST', path: /\/issues$/ } });
    emu.inject({ kind: 'rate_limit', limit: 'primary', resetInSeconds: 3600, match: { method: 'POST', path: /\/issues$/ } });
    const stopped = await transport().push({ env }).catch((e: unknown) => e);
    expect(stopped).toBeInstanceOf(WbError);
    expect((stopped as WbError).code).toBe('sync_failed');
    expect((stopped as WbError).message).toMatch(/primary rate limit stopped the issues sync/);
    expect(emu.repo(REPO)!.issues).toHaveLength(8);
    const resumed = await transport().push({ env });
    expect(resumed).toMatchObject({ status: 'pushed', issues: { created: 12, unchanged: 8 } });
    expect(emu.repo(REPO)!.issues).toHaveLength(20);
  }, 120_000);

  it('the scheduled poll costs one request when nothing changed, and pulls an issue a person edited', async () => {
    makeTasks(8);
    configure(1);
    await transport().push({ env });
    const asked = emu.requests.length;
    const quiet = await syncPoll(loadConfig(root), { env });
    expect(quiet.polled).toMatchObject([{ transport: 'issues', changed: false, requests: 1, pulled: null, error: null }]);
    expect(emu.requests.length - asked).toBe(1);

    await new Promise((r) => setTimeout(r, 1100));
    emu.editIssue(REPO, issueOf(3).number, { title: 'Task 3, edited on the web' });
    const noticed = await syncPoll(loadConfig(root), { env });
    expect(noticed.polled[0]).toMatchObject({ changed: true, requests: 1, pulled: { status: 'applied', conflicts: 0 }, error: null });
    expect(task(3).title).toBe('Task 3, edited on the web');

    const after = emu.requests.length;
    expect((await syncPoll(loadConfig(root), { env })).polled[0]).toMatchObject({ changed: false, requests: 1 });
    expect(emu.requests.length - after).toBe(1);
  }, 120_000);
});
