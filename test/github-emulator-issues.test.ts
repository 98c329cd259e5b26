// The GitHub emulator's issues, labels and comments, and its rate-limit answers, as the real gh sees
// them: status codes, headers, pagination and errors as GitHub documents them.
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';

let emu: GithubEmulator;
const REPO = 'octo/tasks';

beforeEach(async () => {
  emu = await startGithubEmulator();
  emu.createRepo(REPO);
});
afterEach(() => emu.close());

interface Answer {
  exitCode: number;
  status: number;
  headers: Record<string, string>;
  json: unknown;
  stderr: string;
}

/** `gh api -i`: the status line, headers and body as gh printed them. */
async function api(...args: string[]): Promise<Answer> {
  const r = await execa('gh', ['api', '-i', ...args], { env: emu.ghEnv(), extendEnv: false, reject: false });
  const out = String(r.stdout);
  const split = out.indexOf('\r\n\r\n') >= 0 ? out.indexOf('\r\n\r\n') : out.indexOf('\n\n');
  const head = out.slice(0, split).split(/\r?\n/);
  const body = out.slice(split).trim();
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { exitCode: r.exitCode ?? -1, status: Number(/^HTTP\/\S+ (\d+)/.exec(head[0] ?? '')?.[1] ?? 0), headers, json: body ? JSON.parse(body) : null, stderr: String(r.stderr) };
}

type IssueJson = { number: number; title: string; body: string | null; state: string; state_reason: string | null; labels: Array<{ name: string }>; updated_at: string; closed_at: string | null; comments: number };

async function createIssue(title: string, labels: string[] = []): Promise<IssueJson> {
  const args = ['-X', 'POST', `repos/${REPO}/issues`, '-f', `title=${title}`, '-f', `body=about ${title}`];
  for (const l of labels) args.push('-f', `labels[]=${l}`);
  const r = await api(...args);
  expect(r.status).toBe(201);
  return r.json as IssueJson;
}

describe('the emulator answers issue requests as GitHub does', () => {
  it('creates an issue (201, Location, labels created on first use), gets it, and 404s an unknown number', async () => {
    const created = await createIssue('first', ['wb:managed', 'state:open']);
    expect(created).toMatchObject({ number: 1, title: 'first', body: 'about first', state: 'open', state_reason: null, closed_at: null, comments: 0 });
    expect(created.labels.map((l) => l.name)).toEqual(['wb:managed', 'state:open']);
    expect(emu.repo(REPO)!.labels).toEqual(['state:open', 'wb:managed']);
    const got = await api(`repos/${REPO}/issues/1`);
    expect(got.status).toBe(200);
    expect((got.json as IssueJson).title).toBe('first');
    const missing = await api(`repos/${REPO}/issues/99`);
    expect(missing.exitCode).toBe(1);
    expect(missing.status).toBe(404);
    expect(missing.stderr).toContain('Not Found (HTTP 404)');
  });

  it('refuses an issue without a title with 422 missing_field', async () => {
    const r = await api('-X', 'POST', `repos/${REPO}/issues`, '-f', 'body=no title');
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ message: 'Validation Failed', errors: [{ resource: 'Issue', code: 'missing_field', field: 'title' }] });
  });

  it('closes with state_reason completed (or not_planned), reopens with reopened, and refuses an unknown state', async () => {
    await createIssue('t');
    const closed = await api('-X', 'PATCH', `repos/${REPO}/issues/1`, '-f', 'state=closed');
    expect(closed.json).toMatchObject({ state: 'closed', state_reason: 'completed' });
    expect((closed.json as IssueJson).closed_at).not.toBeNull();
    const reopened = await api('-X', 'PATCH', `repos/${REPO}/issues/1`, '-f', 'state=open');
    expect(reopened.json).toMatchObject({ state: 'open', state_reason: 'reopened', closed_at: null });
    const notPlanned = await api('-X', 'PATCH', `repos/${REPO}/issues/1`, '-f', 'state=closed', '-f', 'state_reason=not_planned');
    expect(notPlanned.json).toMatchObject({ state: 'closed', state_reason: 'not_planned' });
    const bad = await api('-X', 'PATCH', `repos/${REPO}/issues/1`, '-f', 'state=done');
    expect(bad.status).toBe(422);
    expect(bad.json).toMatchObject({ errors: [{ resource: 'Issue', field: 'state', code: 'invalid' }] });
  });

  it('lists open issues by default, filters by state, by every label given and by since, and pages with Link headers', async () => {
    for (let i = 1; i <= 5; i++) await createIssue(`t${i}`, i % 2 ? ['wb:managed', 'type:bug'] : ['wb:managed']);
    await api('-X', 'PATCH', `repos/${REPO}/issues/2`, '-f', 'state=closed');
    const open = await api(`repos/${REPO}/issues`);
    expect((open.json as IssueJson[]).map((i) => i.number)).toEqual([5, 4, 3, 1]); // created, newest first
    const all = await api(`repos/${REPO}/issues?state=all&direction=asc`);
    expect((all.json as IssueJson[]).map((i) => i.number)).toEqual([1, 2, 3, 4, 5]);
    const bugs = await api(`repos/${REPO}/issues?state=all&labels=WB:MANAGED,type:bug`);
    expect((bugs.json as IssueJson[]).map((i) => i.number)).toEqual([5, 3, 1]);

    const page1 = await api(`repos/${REPO}/issues?state=all&per_page=2&sort=created&direction=asc`);
    expect((page1.json as IssueJson[]).map((i) => i.number)).toEqual([1, 2]);
    const id = emu.repo(REPO)!.id;
    expect(page1.headers.link).toContain(`<http://api.github.localhost/repositories/${id}/issues?state=all&per_page=2&sort=created&direction=asc&page=2>; rel="next"`);
    expect(page1.headers.link).toContain('page=3>; rel="last"');
    const page3 = await api(`repositories/${id}/issues?state=all&per_page=2&sort=created&direction=asc&page=3`);
    expect((page3.json as IssueJson[]).map((i) => i.number)).toEqual([5]);
    expect(page3.headers.link).toContain('rel="prev"');
    expect(page3.headers.link).not.toContain('rel="next"');

    // gh --paginate follows the links to the end
    const paged = await execa('gh', ['api', '--paginate', `repos/${REPO}/issues?state=all&per_page=2`], { env: emu.ghEnv(), extendEnv: false });
    expect(String(paged.stdout).match(/"number":/g)).toHaveLength(5);

    // since: updated at or after; an edit "by a person" bumps updated_at
    const latest = (all.json as IssueJson[]).map((i) => i.updated_at).sort().at(-1)!;
    await new Promise((r) => setTimeout(r, 1100)); // GitHub's clock has whole seconds
    emu.editIssue(REPO, 3, { title: 't3 renamed' });
    const after = new Date(Date.parse(latest) + 1000).toISOString();
    const since = await api(`repos/${REPO}/issues?state=all&since=${after}`);
    expect((since.json as IssueJson[]).map((i) => i.number)).toEqual([3]);
    const sinceLatest = await api(`repos/${REPO}/issues?state=all&since=${latest}`);
    expect((sinceLatest.json as IssueJson[]).length).toBeGreaterThanOrEqual(1); // inclusive
    const badSince = await api(`repos/${REPO}/issues?since=yesterday`);
    expect(badSince.status).toBe(422);
    const byUpdated = await api(`repos/${REPO}/issues?state=all&sort=updated&direction=desc&per_page=1`);
    expect((byUpdated.json as IssueJson[])[0]!.number).toBe(3);
  });

  it('creates and lists labels, and answers 422 already_exists for a name taken in another case', async () => {
    const made = await api('-X', 'POST', `repos/${REPO}/labels`, '-f', 'name=priority:high', '-f', 'color=d73a4a', '-f', 'description=from wb');
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ name: 'priority:high', color: 'd73a4a', description: 'from wb', default: false });
    const again = await api('-X', 'POST', `repos/${REPO}/labels`, '-f', 'name=Priority:High');
    expect(again.status).toBe(422);
    expect(again.json).toMatchObject({ message: 'Validation Failed', errors: [{ resource: 'Label', code: 'already_exists', field: 'name' }] });
    const list = await api(`repos/${REPO}/labels`);
    expect((list.json as Array<{ name: string }>).map((l) => l.name)).toEqual(['priority:high']);
  });

  it('adds, lists (per issue and repository-wide, with since) and edits comments, each bumping the issue', async () => {
    const issue = await createIssue('with comments');
    await new Promise((r) => setTimeout(r, 1100));
    const c1 = await api('-X', 'POST', `repos/${REPO}/issues/1/comments`, '-f', 'body=first');
    expect(c1.status).toBe(201);
    expect(c1.json).toMatchObject({ body: 'first', issue_url: `http://api.github.localhost/repos/${REPO}/issues/1`, user: { login: 'octo' } });
    const bumped = (await api(`repos/${REPO}/issues/1`)).json as IssueJson;
    expect(bumped.updated_at > issue.updated_at).toBe(true);
    expect(bumped.comments).toBe(1);
    const personal = emu.addComment(REPO, 1, 'a person writes');
    const perIssue = await api(`repos/${REPO}/issues/1/comments`);
    expect((perIssue.json as Array<{ body: string; user: { login: string } }>).map((c) => [c.body, c.user.login])).toEqual([
      ['first', 'octo'],
      ['a person writes', 'hubber'],
    ]);
    const id = (c1.json as { id: number }).id;
    const edited = await api('-X', 'PATCH', `repos/${REPO}/issues/comments/${id}`, '-f', 'body=first, edited');
    expect(edited.json).toMatchObject({ id, body: 'first, edited' });
    const repoWide = await api(`repos/${REPO}/issues/comments?since=${issue.updated_at}`);
    expect((repoWide.json as Array<{ id: number }>).map((c) => c.id)).toEqual([id, personal]);
    const deleted = await api('-X', 'DELETE', `repos/${REPO}/issues/comments/${id}`);
    expect(deleted.status).toBe(204);
    expect(emu.repo(REPO)!.comments.map((c) => c.body)).toEqual(['a person writes']);
  });

  it('edits "by a person": title, labels, closing, all visible through the API with a later updated_at', async () => {
    const created = await createIssue('task', ['wb:managed', 'priority:low']);
    await new Promise((r) => setTimeout(r, 1100));
    emu.editIssue(REPO, 1, { title: 'renamed', addLabels: ['priority:high'], removeLabels: ['priority:low'], state: 'closed' });
    const got = (await api(`repos/${REPO}/issues/1`)).json as IssueJson;
    expect(got).toMatchObject({ title: 'renamed', state: 'closed', state_reason: 'completed' });
    expect(got.labels.map((l) => l.name)).toEqual(['wb:managed', 'priority:high']);
    expect(got.updated_at > created.updated_at).toBe(true);
    const byHand = emu.createIssue(REPO, { title: 'made by hand' });
    expect(emu.repo(REPO)!.issues.find((i) => i.number === byHand)).toMatchObject({ user: 'hubber', labels: [] });
  });
});

describe('the emulator answers rate limits as GitHub does', () => {
  it('primary limit: 403 with X-RateLimit-Remaining 0 and the reset time; gh exits 1 and prints the message', async () => {
    emu.inject({ kind: 'rate_limit', limit: 'primary', resetInSeconds: 120, match: { path: /\/issues/ } });
    const before = Math.floor(Date.now() / 1000);
    const r = await api(`repos/${REPO}/issues`);
    expect(r.exitCode).toBe(1);
    expect(r.status).toBe(403);
    expect(r.headers['x-ratelimit-remaining']).toBe('0');
    expect(Number(r.headers['x-ratelimit-reset'])).toBeGreaterThanOrEqual(before + 119);
    expect(r.stderr).toMatch(/gh: API rate limit exceeded for user ID \d+\..*\(HTTP 403\)/);
    expect((await api(`repos/${REPO}/issues`)).status).toBe(200); // once only
  });

  it('secondary limit: 403 or 429 with Retry-After, quota left', async () => {
    emu.inject({ kind: 'rate_limit', limit: 'secondary', retryAfterSeconds: 7, match: { method: 'POST' } });
    emu.inject({ kind: 'rate_limit', limit: 'secondary', status: 429, match: { method: 'POST' } });
    const first = await api('-X', 'POST', `repos/${REPO}/issues`, '-f', 'title=x');
    expect(first).toMatchObject({ status: 403, exitCode: 1 });
    expect(first.headers['retry-after']).toBe('7');
    expect(Number(first.headers['x-ratelimit-remaining'])).toBeGreaterThan(0);
    expect(first.stderr).toContain('You have exceeded a secondary rate limit');
    const second = await api('-X', 'POST', `repos/${REPO}/issues`, '-f', 'title=x');
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBeUndefined();
    expect(emu.repo(REPO)!.issues).toHaveLength(0); // neither was handled
  });

  it('lose_response: the issue is created but gh sees the connection drop', async () => {
    emu.inject({ kind: 'lose_response', match: { method: 'POST', path: /\/issues$/ } });
    const r = await api('-X', 'POST', `repos/${REPO}/issues`, '-f', 'title=accepted');
    expect(r.exitCode).toBe(1);
    expect(emu.repo(REPO)!.issues.map((i) => i.title)).toEqual(['accepted']);
    expect(emu.requests.find((q) => q.method === 'POST')).toMatchObject({ status: 0, fault: 'lose_response' });
  });
});
