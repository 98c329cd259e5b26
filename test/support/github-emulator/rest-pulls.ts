/**
 * REST routes for pull requests between branches of the same repository. GitHub rules emulated:
 * - head and base must be branches of the repository (`head` may be `owner:branch`; another owner
 *   would be a fork, which the emulator has none of): else 422 with `{field: head|base, code: invalid}`;
 * - one open pull request per head and base: 422 "A pull request already exists for owner:branch.";
 * - head must have commits base lacks (`git rev-list --count base..head` in the bare repository):
 *   else 422 "No commits between BASE and HEAD";
 * - creating answers `mergeable: null` (GitHub computes it in the background); a later GET computes it.
 * Numbers count from 1 per repository, shared with issues (as on GitHub).
 */
import { visibleRepo, writableRepo } from './access.js';
import { API_BASE } from './hosts.js';
import { bool, type Ctx, type JsonObject, notFound, paginate, readJsonObject, sendError, sendJson, str, validationFailed } from './http.js';
import { type Route, route } from './router.js';
import { pullJson } from './serialize.js';
import type { PullRequest, Repo } from './state.js';

const D = {
  create: 'https://docs.github.com/rest/pulls/pulls#create-a-pull-request',
  list: 'https://docs.github.com/rest/pulls/pulls#list-pull-requests',
  get: 'https://docs.github.com/rest/pulls/pulls#get-a-pull-request',
  update: 'https://docs.github.com/rest/pulls/pulls#update-a-pull-request',
};

/** `branch` or `owner:branch`; undefined owner means the repository's own. */
function parseHead(head: string): { owner: string | undefined; branch: string } {
  const i = head.indexOf(':');
  return i < 0 ? { owner: undefined, branch: head } : { owner: head.slice(0, i), branch: head.slice(i + 1) };
}

/** Schema checks GitHub runs before anything else: wrong types and missing required fields. */
function checkBody(ctx: Ctx, body: JsonObject, required: readonly string[], docs: string): boolean {
  for (const k of ['title', 'head', 'base', 'body', 'state'] as const) {
    if (body[k] !== undefined && body[k] !== null && typeof body[k] !== 'string') {
      sendError(ctx, 422, `Invalid request.\n\nFor 'properties/${k}', ${JSON.stringify(body[k])} is not a string.`, docs);
      return false;
    }
  }
  for (const k of ['draft', 'maintainer_can_modify'] as const) {
    if (body[k] !== undefined && typeof body[k] !== 'boolean') {
      sendError(ctx, 422, `Invalid request.\n\nFor 'properties/${k}', ${JSON.stringify(body[k])} is not a boolean.`, docs);
      return false;
    }
  }
  const missing = required.filter((k) => typeof body[k] !== 'string');
  if (missing.length) {
    const names = missing.map((k) => `"${k}"`).join(', ');
    sendError(ctx, 422, `Invalid request.\n\n${names} ${missing.length === 1 ? "wasn't" : "weren't"} supplied.`, docs);
    return false;
  }
  return true;
}

function pullFor(ctx: Ctx, repo: Repo, numberText: string, docs: string): PullRequest | undefined {
  const pr = /^\d+$/.test(numberText) ? repo.pulls.find((p) => p.number === Number(numberText)) : undefined;
  if (!pr) notFound(ctx, docs);
  return pr;
}

const alreadyExists = (repo: Repo, headRef: string): Record<string, string> => ({
  resource: 'PullRequest',
  code: 'custom',
  message: `A pull request already exists for ${repo.owner.login}:${headRef}.`,
});

/** Full form of a single pull request, with the numbers GitHub computes from git. */
function detailed(ctx: Ctx, repo: Repo, pr: PullRequest, fresh: boolean): Record<string, unknown> {
  const git = ctx.world.git;
  const stat = git.diffStat(repo.gitDir, pr.baseSha, pr.headSha);
  const mergeable = fresh || pr.state !== 'open' ? null : git.mergeable(repo.gitDir, pr.baseSha, pr.headSha);
  return {
    ...pullJson(ctx.world, repo, pr),
    merged: pr.mergedAt !== null,
    mergeable,
    rebaseable: mergeable,
    mergeable_state: mergeable === null ? 'unknown' : !mergeable ? 'dirty' : pr.draft ? 'draft' : 'clean',
    merged_by: null,
    comments: 0,
    review_comments: 0,
    maintainer_can_modify: false,
    commits: git.aheadBy(repo.gitDir, pr.baseSha, pr.headSha),
    additions: stat.additions,
    deletions: stat.deletions,
    changed_files: stat.changedFiles,
  };
}

function sortPulls(pulls: PullRequest[], query: URLSearchParams): PullRequest[] {
  const sort = query.get('sort') ?? 'created';
  const key = (p: PullRequest): string => (sort === 'updated' ? p.updatedAt : p.createdAt);
  const desc = (query.get('direction') ?? 'desc') !== 'asc';
  return [...pulls].sort((a, b) => {
    const c = key(a) === key(b) ? a.number - b.number : key(a) < key(b) ? -1 : 1;
    return desc ? -c : c;
  });
}

export const pullRoutes: readonly Route[] = [
  route('GET', '/repos/:owner/:repo/pulls', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.list);
    if (!repo) return;
    // An unknown state is read as the default (unverified against GitHub).
    const raw = ctx.query.get('state') ?? 'open';
    const state = ['open', 'closed', 'all'].includes(raw) ? raw : 'open';
    let pulls = repo.pulls.filter((pr) => state === 'all' || pr.state === state);
    // GitHub ignores a head filter without the `owner:` part.
    const head = ctx.query.get('head');
    if (head?.includes(':')) {
      const h = parseHead(head);
      pulls = pulls.filter((pr) => h.owner!.toLowerCase() === repo.owner.login.toLowerCase() && pr.headRef === h.branch);
    }
    const base = ctx.query.get('base');
    if (base) pulls = pulls.filter((pr) => pr.baseRef === base);
    const { page, link } = paginate(sortPulls(pulls, ctx.query), ctx.query, `${API_BASE}/repositories/${repo.id}/pulls`);
    sendJson(ctx, 200, page.map((pr) => pullJson(ctx.world, repo, pr)), link ? { Link: link } : {});
  }),

  route('POST', '/repos/:owner/:repo/pulls', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.create);
    if (!repo) return;
    const body = await readJsonObject(ctx);
    if (!body || !checkBody(ctx, body, ['head', 'base'], D.create)) return;
    const title = str(body.title);
    if (!title) return validationFailed(ctx, D.create, [{ resource: 'PullRequest', code: 'missing_field', field: 'title' }]);
    const headText = str(body.head)!;
    const baseRef = str(body.base)!;
    const head = parseHead(headText);
    const sameOwner = head.owner === undefined || head.owner.toLowerCase() === repo.owner.login.toLowerCase();
    const headSha = sameOwner ? repo.branches.get(head.branch) : undefined;
    const baseSha = repo.branches.get(baseRef);
    const invalid: Array<Record<string, string>> = [];
    if (!baseSha) invalid.push({ resource: 'PullRequest', field: 'base', code: 'invalid' });
    if (!headSha) invalid.push({ resource: 'PullRequest', field: 'head', code: 'invalid' });
    if (!headSha || !baseSha) return validationFailed(ctx, D.create, invalid);
    if (repo.pulls.some((pr) => pr.state === 'open' && pr.headRef === head.branch && pr.baseRef === baseRef)) {
      return validationFailed(ctx, D.create, [alreadyExists(repo, head.branch)]);
    }
    if (ctx.world.git.aheadBy(repo.gitDir, baseSha, headSha) === 0) {
      return validationFailed(ctx, D.create, [{ resource: 'PullRequest', code: 'custom', message: `No commits between ${baseRef} and ${headText}` }]);
    }
    const now = ctx.world.now();
    const pr: PullRequest = {
      id: ctx.world.id(),
      number: ctx.world.nextNumber(repo),
      title,
      body: str(body.body) ?? null,
      state: 'open',
      draft: bool(body.draft) ?? false,
      maintainerCanModify: bool(body.maintainer_can_modify) ?? true,
      headRef: head.branch,
      headSha,
      baseRef,
      baseSha,
      author: ctx.world.viewerLogin,
      createdAt: now,
      updatedAt: now,
      closedAt: null,
      mergedAt: null,
    };
    repo.pulls.push(pr);
    // GitHub keeps every pull request's head under refs/pull/N/head (fetchable, not pushable).
    ctx.world.git.updateRef(repo.gitDir, `refs/pull/${pr.number}/head`, headSha);
    const json = detailed(ctx, repo, pr, true);
    sendJson(ctx, 201, json, { Location: String(json.url) });
  }),

  route('GET', '/repos/:owner/:repo/pulls/:number', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.get);
    if (!repo) return;
    const pr = pullFor(ctx, repo, p.number!, D.get);
    if (pr) sendJson(ctx, 200, detailed(ctx, repo, pr, false));
  }),

  // Edit title/body/base, close or reopen.
  route('PATCH', '/repos/:owner/:repo/pulls/:number', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.update);
    if (!repo) return;
    const pr = pullFor(ctx, repo, p.number!, D.update);
    if (!pr) return;
    const body = await readJsonObject(ctx);
    if (!body || !checkBody(ctx, body, [], D.update)) return;
    const state = str(body.state) ?? pr.state;
    if (state !== 'open' && state !== 'closed') return validationFailed(ctx, D.update, [{ resource: 'PullRequest', field: 'state', code: 'invalid' }]);
    const baseRef = str(body.base) ?? pr.baseRef;
    const baseSha = repo.branches.get(baseRef);
    if (!baseSha) return validationFailed(ctx, D.update, [{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
    // GitHub: "Cannot reopen a merged pull request" is not offered; the API answers 422.
    if (state === 'open' && pr.mergedAt !== null) {
      return sendError(ctx, 422, 'Validation Failed', D.update, [{ resource: 'PullRequest', code: 'custom', field: 'state', message: 'state cannot be changed. The pull request cannot be reopened because it has been merged.' }]);
    }
    if (state === 'open' && pr.state === 'closed') {
      const headSha = repo.branches.get(pr.headRef);
      if (!headSha) return validationFailed(ctx, D.update, [{ resource: 'PullRequest', field: 'state', code: 'invalid' }]);
      if (repo.pulls.some((o) => o !== pr && o.state === 'open' && o.headRef === pr.headRef && o.baseRef === baseRef)) {
        return validationFailed(ctx, D.update, [alreadyExists(repo, pr.headRef)]);
      }
      pr.headSha = headSha;
      ctx.world.git.updateRef(repo.gitDir, `refs/pull/${pr.number}/head`, headSha);
    }
    if (body.title !== undefined) pr.title = str(body.title) ?? pr.title;
    if (body.body !== undefined) pr.body = str(body.body) ?? null;
    pr.baseRef = baseRef;
    pr.baseSha = baseSha;
    if (state !== pr.state) pr.closedAt = state === 'closed' ? ctx.world.now() : null;
    pr.state = state;
    pr.updatedAt = ctx.world.now();
    sendJson(ctx, 200, detailed(ctx, repo, pr, false));
  }),
];
