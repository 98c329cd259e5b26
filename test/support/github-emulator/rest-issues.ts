/**
 * REST routes for issues, labels and issue comments. GitHub rules emulated:
 * - issues and pull requests share one number sequence per repository;
 * - listing issues: `state` open (default) / closed / all, `labels` a comma-separated list every
 *   issue must carry (case-insensitive), `since` (updated at or after, ISO 8601), `sort` created
 *   (default) / updated / comments, `direction` desc (default) / asc, `per_page`/`page` with Link
 *   headers on /repositories/ID; pull requests are not listed (GitHub would list them too, with a
 *   `pull_request` field: the emulator's pull requests are never labelled, so a label filter
 *   would drop them anyway);
 * - creating or editing an issue with a label that does not exist creates the label (colour
 *   ededed), as GitHub does for a caller with push access;
 * - `state` other than open/closed is 422; closing without a reason sets `state_reason: completed`,
 *   reopening sets `reopened`; `closed_at` follows;
 * - a label name that exists (case-insensitive) is 422 `already_exists`;
 * - adding or editing a comment bumps the issue's `updated_at`; repository-wide comment listing
 *   takes `since`, `sort` created (default) / updated and `direction` asc (default) / desc.
 */
import { visibleRepo, writableRepo } from './access.js';
import { API_BASE, WEB_BASE } from './hosts.js';
import { type Ctx, type JsonObject, notFound, paginate, readJsonObject, sendError, sendJson, sendNoContent, str, validationFailed } from './http.js';
import { type Route, route } from './router.js';
import { accountJson, nodeId } from './serialize.js';
import type { Issue, IssueComment, Label, Repo, World } from './state.js';

const D = {
  listIssues: 'https://docs.github.com/rest/issues/issues#list-repository-issues',
  createIssue: 'https://docs.github.com/rest/issues/issues#create-an-issue',
  getIssue: 'https://docs.github.com/rest/issues/issues#get-an-issue',
  updateIssue: 'https://docs.github.com/rest/issues/issues#update-an-issue',
  labels: 'https://docs.github.com/rest/issues/labels#create-a-label',
  listLabels: 'https://docs.github.com/rest/issues/labels#list-labels-for-a-repository',
  comments: 'https://docs.github.com/rest/issues/comments#create-an-issue-comment',
  listComments: 'https://docs.github.com/rest/issues/comments#list-issue-comments',
  repoComments: 'https://docs.github.com/rest/issues/comments#list-issue-comments-for-a-repository',
  updateComment: 'https://docs.github.com/rest/issues/comments#update-an-issue-comment',
};

function labelJson(repo: Repo, l: Label): Record<string, unknown> {
  return {
    id: l.id,
    node_id: nodeId('LA', l.id),
    url: `${API_BASE}/repos/${repo.owner.login}/${repo.name}/labels/${encodeURIComponent(l.name)}`,
    name: l.name,
    color: l.color,
    default: false,
    description: l.description,
  };
}

export function issueJson(world: World, repo: Repo, i: Issue): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const api = `${API_BASE}/repos/${full}/issues/${i.number}`;
  const author = world.account(i.author);
  return {
    url: api,
    repository_url: `${API_BASE}/repos/${full}`,
    labels_url: `${api}/labels{/name}`,
    comments_url: `${api}/comments`,
    events_url: `${api}/events`,
    html_url: `${WEB_BASE}/${full}/issues/${i.number}`,
    id: i.id,
    node_id: nodeId('I', i.id),
    number: i.number,
    title: i.title,
    user: accountJson(author),
    labels: i.labels.map((n) => labelJson(repo, world.ensureLabel(repo, n))),
    state: i.state,
    locked: false,
    assignee: null,
    assignees: [],
    milestone: null,
    comments: repo.comments.filter((c) => c.issueNumber === i.number).length,
    created_at: i.createdAt,
    updated_at: i.updatedAt,
    closed_at: i.closedAt,
    author_association: author.id === repo.owner.id ? 'OWNER' : 'CONTRIBUTOR',
    active_lock_reason: null,
    body: i.body,
    state_reason: i.stateReason,
  };
}

function commentJson(world: World, repo: Repo, c: IssueComment): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const author = world.account(c.author);
  return {
    url: `${API_BASE}/repos/${full}/issues/comments/${c.id}`,
    html_url: `${WEB_BASE}/${full}/issues/${c.issueNumber}#issuecomment-${c.id}`,
    issue_url: `${API_BASE}/repos/${full}/issues/${c.issueNumber}`,
    id: c.id,
    node_id: nodeId('IC', c.id),
    user: accountJson(author),
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    author_association: author.id === repo.owner.id ? 'OWNER' : 'CONTRIBUTOR',
    body: c.body,
  };
}

/** `since` as GitHub takes it (ISO 8601); undefined when absent, null when it does not parse. */
function sinceOf(ctx: Ctx): string | undefined | null {
  const raw = ctx.query.get('since');
  if (raw === null || raw === '') return undefined;
  const t = Date.parse(raw);
  return Number.isNaN(t) ? null : new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function issueFor(ctx: Ctx, repo: Repo, numberText: string, docs: string): Issue | undefined {
  const issue = /^\d+$/.test(numberText) ? repo.issues.find((i) => i.number === Number(numberText)) : undefined;
  if (!issue) notFound(ctx, docs);
  return issue;
}

/** `labels` of a create/update body: names or `{name}` objects; undefined when absent, null when malformed. */
function labelNames(v: unknown): string[] | undefined | null {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return null;
  const out: string[] = [];
  for (const x of v) {
    const name = typeof x === 'string' ? x : x && typeof x === 'object' ? str((x as JsonObject).name) : undefined;
    if (!name) return null;
    if (!out.some((n) => n.toLowerCase() === name.toLowerCase())) out.push(name);
  }
  return out;
}

/** Labels as stored: the existing label's spelling, created when missing. */
function useLabels(world: World, repo: Repo, names: readonly string[]): string[] {
  return names.map((n) => world.ensureLabel(repo, n).name);
}

function stringField(ctx: Ctx, body: JsonObject, keys: readonly string[], docs: string): boolean {
  for (const k of keys) {
    if (body[k] !== undefined && body[k] !== null && typeof body[k] !== 'string') {
      sendError(ctx, 422, `Invalid request.\n\nFor 'properties/${k}', ${JSON.stringify(body[k])} is not a string.`, docs);
      return false;
    }
  }
  return true;
}

function sortIssues(items: Issue[], repo: Repo, query: URLSearchParams): Issue[] {
  const sort = query.get('sort') ?? 'created';
  const count = (i: Issue): number => repo.comments.filter((c) => c.issueNumber === i.number).length;
  const desc = (query.get('direction') ?? 'desc') !== 'asc';
  return [...items].sort((a, b) => {
    let c: number;
    if (sort === 'updated') c = a.updatedAt === b.updatedAt ? 0 : a.updatedAt < b.updatedAt ? -1 : 1;
    else if (sort === 'comments') c = count(a) - count(b);
    else c = a.createdAt === b.createdAt ? 0 : a.createdAt < b.createdAt ? -1 : 1;
    if (c === 0) c = a.number - b.number;
    return desc ? -c : c;
  });
}

/** Applies a state change with GitHub's bookkeeping (closed_at, state_reason). */
export function setIssueState(world: World, issue: Issue, state: 'open' | 'closed', reason?: 'completed' | 'not_planned' | null): void {
  if (state === 'closed') {
    if (issue.state !== 'closed') issue.closedAt = world.now();
    issue.stateReason = reason ?? 'completed';
  } else if (issue.state === 'closed') {
    issue.closedAt = null;
    issue.stateReason = 'reopened';
  }
  issue.state = state;
}

export function newIssue(world: World, repo: Repo, fields: { title: string; body: string | null; labels: readonly string[]; author: string }): Issue {
  const now = world.now();
  const issue: Issue = {
    id: world.id(),
    number: world.nextNumber(repo),
    title: fields.title,
    body: fields.body,
    state: 'open',
    stateReason: null,
    labels: useLabels(world, repo, fields.labels),
    author: fields.author,
    createdAt: now,
    updatedAt: now,
    closedAt: null,
  };
  repo.issues.push(issue);
  return issue;
}

export function newComment(world: World, repo: Repo, issue: Issue, body: string, author: string): IssueComment {
  const now = world.now();
  const c: IssueComment = { id: world.id(), issueNumber: issue.number, body, author, createdAt: now, updatedAt: now };
  repo.comments.push(c);
  issue.updatedAt = world.bump(issue.updatedAt);
  return c;
}

function commentFor(ctx: Ctx, repo: Repo, idText: string, docs: string): IssueComment | undefined {
  const c = /^\d+$/.test(idText) ? repo.comments.find((x) => x.id === Number(idText)) : undefined;
  if (!c) notFound(ctx, docs);
  return c;
}

export const issueRoutes: readonly Route[] = [
  // Repository-wide comment routes first: `issues/comments` must not be read as issue "comments".
  route('GET', '/repos/:owner/:repo/issues/comments', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.repoComments);
    if (!repo) return;
    const since = sinceOf(ctx);
    if (since === null) return validationFailed(ctx, D.repoComments, [{ resource: 'IssueComment', field: 'since', code: 'invalid' }]);
    const byUpdated = ctx.query.get('sort') === 'updated';
    const desc = ctx.query.get('sort') !== null && ctx.query.get('direction') === 'desc';
    const items = repo.comments
      .filter((c) => since === undefined || c.updatedAt >= since)
      .sort((a, b) => {
        const ka = byUpdated ? a.updatedAt : a.createdAt;
        const kb = byUpdated ? b.updatedAt : b.createdAt;
        const c = ka === kb ? a.id - b.id : ka < kb ? -1 : 1;
        return desc ? -c : c;
      });
    const { page, link } = paginate(items, ctx.query, `${API_BASE}/repositories/${repo.id}/issues/comments`);
    sendJson(ctx, 200, page.map((c) => commentJson(ctx.world, repo, c)), link ? { Link: link } : {});
  }),

  route('GET', '/repos/:owner/:repo/issues/comments/:id', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.updateComment);
    if (!repo) return;
    const c = commentFor(ctx, repo, p.id!, D.updateComment);
    if (c) sendJson(ctx, 200, commentJson(ctx.world, repo, c));
  }),

  route('PATCH', '/repos/:owner/:repo/issues/comments/:id', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.updateComment);
    if (!repo) return;
    const c = commentFor(ctx, repo, p.id!, D.updateComment);
    if (!c) return;
    const body = await readJsonObject(ctx);
    if (!body || !stringField(ctx, body, ['body'], D.updateComment)) return;
    const text = str(body.body);
    if (text === undefined) return validationFailed(ctx, D.updateComment, [{ resource: 'IssueComment', code: 'missing_field', field: 'body' }]);
    c.body = text;
    c.updatedAt = ctx.world.bump(c.updatedAt);
    const issue = repo.issues.find((i) => i.number === c.issueNumber);
    if (issue) issue.updatedAt = ctx.world.bump(issue.updatedAt);
    sendJson(ctx, 200, commentJson(ctx.world, repo, c));
  }),

  route('DELETE', '/repos/:owner/:repo/issues/comments/:id', (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.updateComment);
    if (!repo) return;
    const c = commentFor(ctx, repo, p.id!, D.updateComment);
    if (!c) return;
    repo.comments.splice(repo.comments.indexOf(c), 1);
    sendNoContent(ctx);
  }),

  route('GET', '/repos/:owner/:repo/issues', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.listIssues);
    if (!repo) return;
    const since = sinceOf(ctx);
    if (since === null) return validationFailed(ctx, D.listIssues, [{ resource: 'Issue', field: 'since', code: 'invalid' }]);
    const raw = ctx.query.get('state') ?? 'open';
    const state = ['open', 'closed', 'all'].includes(raw) ? raw : 'open';
    const wanted = (ctx.query.get('labels') ?? '')
      .split(',')
      .map((l) => l.trim().toLowerCase())
      .filter(Boolean);
    const items = repo.issues.filter(
      (i) =>
        (state === 'all' || i.state === state) &&
        (since === undefined || i.updatedAt >= since) &&
        wanted.every((w) => i.labels.some((l) => l.toLowerCase() === w)),
    );
    const { page, link } = paginate(sortIssues(items, repo, ctx.query), ctx.query, `${API_BASE}/repositories/${repo.id}/issues`);
    sendJson(ctx, 200, page.map((i) => issueJson(ctx.world, repo, i)), link ? { Link: link } : {});
  }),

  route('POST', '/repos/:owner/:repo/issues', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.createIssue);
    if (!repo) return;
    const body = await readJsonObject(ctx);
    if (!body || !stringField(ctx, body, ['body'], D.createIssue)) return;
    // GitHub takes a number as a title too.
    const title = typeof body.title === 'number' ? String(body.title) : str(body.title);
    if (!title) return validationFailed(ctx, D.createIssue, [{ resource: 'Issue', code: 'missing_field', field: 'title' }]);
    const labels = labelNames(body.labels);
    if (labels === null) return sendError(ctx, 422, `Invalid request.\n\nFor 'properties/labels', ${JSON.stringify(body.labels)} is not an array.`, D.createIssue);
    const issue = newIssue(ctx.world, repo, { title, body: str(body.body) ?? null, labels: labels ?? [], author: ctx.world.viewerLogin });
    const json = issueJson(ctx.world, repo, issue);
    sendJson(ctx, 201, json, { Location: String(json.url) });
  }),

  route('GET', '/repos/:owner/:repo/issues/:number', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.getIssue);
    if (!repo) return;
    const issue = issueFor(ctx, repo, p.number!, D.getIssue);
    if (issue) sendJson(ctx, 200, issueJson(ctx.world, repo, issue));
  }),

  route('PATCH', '/repos/:owner/:repo/issues/:number', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.updateIssue);
    if (!repo) return;
    const issue = issueFor(ctx, repo, p.number!, D.updateIssue);
    if (!issue) return;
    const body = await readJsonObject(ctx);
    if (!body || !stringField(ctx, body, ['title', 'body', 'state', 'state_reason'], D.updateIssue)) return;
    const state = str(body.state);
    if (state !== undefined && state !== 'open' && state !== 'closed') return validationFailed(ctx, D.updateIssue, [{ resource: 'Issue', field: 'state', code: 'invalid' }]);
    const reason = body.state_reason === undefined || body.state_reason === null ? undefined : str(body.state_reason);
    if (reason !== undefined && !['completed', 'not_planned', 'reopened'].includes(reason)) return validationFailed(ctx, D.updateIssue, [{ resource: 'Issue', field: 'state_reason', code: 'invalid' }]);
    const labels = labelNames(body.labels);
    if (labels === null) return sendError(ctx, 422, `Invalid request.\n\nFor 'properties/labels', ${JSON.stringify(body.labels)} is not an array.`, D.updateIssue);
    if (body.title !== undefined) {
      const title = str(body.title);
      if (!title) return validationFailed(ctx, D.updateIssue, [{ resource: 'Issue', code: 'missing_field', field: 'title' }]);
      issue.title = title;
    }
    if (body.body !== undefined) issue.body = str(body.body) ?? null;
    if (labels) issue.labels = useLabels(ctx.world, repo, labels);
    if (state) setIssueState(ctx.world, issue, state, reason === 'reopened' ? null : (reason as 'completed' | 'not_planned' | undefined));
    issue.updatedAt = ctx.world.bump(issue.updatedAt);
    sendJson(ctx, 200, issueJson(ctx.world, repo, issue));
  }),

  route('GET', '/repos/:owner/:repo/issues/:number/comments', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.listComments);
    if (!repo) return;
    const issue = issueFor(ctx, repo, p.number!, D.listComments);
    if (!issue) return;
    const since = sinceOf(ctx);
    if (since === null) return validationFailed(ctx, D.listComments, [{ resource: 'IssueComment', field: 'since', code: 'invalid' }]);
    const items = repo.comments.filter((c) => c.issueNumber === issue.number && (since === undefined || c.updatedAt >= since)).sort((a, b) => a.id - b.id);
    const { page, link } = paginate(items, ctx.query, `${API_BASE}/repositories/${repo.id}/issues/${issue.number}/comments`);
    sendJson(ctx, 200, page.map((c) => commentJson(ctx.world, repo, c)), link ? { Link: link } : {});
  }),

  route('POST', '/repos/:owner/:repo/issues/:number/comments', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.comments);
    if (!repo) return;
    const issue = issueFor(ctx, repo, p.number!, D.comments);
    if (!issue) return;
    const body = await readJsonObject(ctx);
    if (!body || !stringField(ctx, body, ['body'], D.comments)) return;
    const text = str(body.body);
    if (!text) return validationFailed(ctx, D.comments, [{ resource: 'IssueComment', code: 'missing_field', field: 'body' }]);
    const c = newComment(ctx.world, repo, issue, text, ctx.world.viewerLogin);
    const json = commentJson(ctx.world, repo, c);
    sendJson(ctx, 201, json, { Location: String(json.url) });
  }),

  route('GET', '/repos/:owner/:repo/labels', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.listLabels);
    if (!repo) return;
    const items = [...repo.labels.values()].sort((a, b) => a.id - b.id);
    const { page, link } = paginate(items, ctx.query, `${API_BASE}/repositories/${repo.id}/labels`);
    sendJson(ctx, 200, page.map((l) => labelJson(repo, l)), link ? { Link: link } : {});
  }),

  route('GET', '/repos/:owner/:repo/labels/:name', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.listLabels);
    if (!repo) return;
    const l = repo.labels.get(p.name!.toLowerCase());
    if (!l) return notFound(ctx, D.listLabels);
    sendJson(ctx, 200, labelJson(repo, l));
  }),

  route('POST', '/repos/:owner/:repo/labels', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.labels);
    if (!repo) return;
    const body = await readJsonObject(ctx);
    if (!body || !stringField(ctx, body, ['name', 'color', 'description'], D.labels)) return;
    const name = str(body.name);
    if (!name) return validationFailed(ctx, D.labels, [{ resource: 'Label', code: 'missing_field', field: 'name' }]);
    const color = (str(body.color) ?? 'ededed').replace(/^#/, '');
    if (!/^[0-9a-fA-F]{6}$/.test(color)) return validationFailed(ctx, D.labels, [{ resource: 'Label', code: 'invalid', field: 'color' }]);
    if (repo.labels.has(name.toLowerCase())) return validationFailed(ctx, D.labels, [{ resource: 'Label', code: 'already_exists', field: 'name' }]);
    const l: Label = { id: ctx.world.id(), name, color: color.toLowerCase(), description: str(body.description) ?? null };
    repo.labels.set(name.toLowerCase(), l);
    const json = labelJson(repo, l);
    sendJson(ctx, 201, json, { Location: String(json.url) });
  }),
];
