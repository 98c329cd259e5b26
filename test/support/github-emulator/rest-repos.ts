/**
 * REST routes for the API root, users and repositories, and the git refs that releases leave behind.
 */
import { requireViewer, visibleRepo, writableRepo } from './access.js';
import { API_BASE } from './hosts.js';
import { bool, type Ctx, notFound, readJsonObject, sendError, sendJson, sendNoContent, str } from './http.js';
import { type Route, route } from './router.js';
import { accountJson, repoJson, userJson } from './serialize.js';
import type { Account } from './state.js';

const D = {
  createUserRepo: 'https://docs.github.com/rest/repos/repos#create-a-repository-for-the-authenticated-user',
  createOrgRepo: 'https://docs.github.com/rest/repos/repos#create-an-organization-repository',
  getRepo: 'https://docs.github.com/rest/repos/repos#get-a-repository',
  getUser: 'https://docs.github.com/rest/users/users#get-a-user',
  getRef: 'https://docs.github.com/rest/git/refs#get-a-reference',
  deleteRef: 'https://docs.github.com/rest/git/refs#delete-a-reference',
};

/** GitHub turns characters it does not allow in repository names into '-'. */
function repoName(raw: string): string {
  return raw.trim().replace(/[^A-Za-z0-9._-]/g, '-');
}

async function createRepo(ctx: Ctx, owner: Account, docs: string): Promise<void> {
  const body = await readJsonObject(ctx);
  if (!body) return;
  const rawName = str(body.name);
  if (!rawName) {
    sendError(ctx, 422, 'Repository creation failed.', docs, [{ resource: 'Repository', code: 'missing_field', field: 'name' }]);
    return;
  }
  const name = repoName(rawName);
  if (ctx.world.findRepo(owner.login, name)) {
    sendError(ctx, 422, 'Repository creation failed.', docs, [
      { resource: 'Repository', code: 'custom', field: 'name', message: 'name already exists on this account' },
    ]);
    return;
  }
  const visibility = str(body.visibility);
  const repo = ctx.world.addRepo(owner.login, name, {
    private: bool(body.private) ?? (visibility !== undefined ? visibility !== 'public' : false),
    // Only auto_init (gh --add-readme, --license, --gitignore) gives the repository a first commit.
    empty: !(bool(body.auto_init) || str(body.license_template) || str(body.gitignore_template)),
    defaultBranch: ctx.world.newRepoBranch,
    description: str(body.description) ?? null,
  });
  repo.hasIssues = bool(body.has_issues) ?? true;
  repo.hasWiki = bool(body.has_wiki) ?? true;
  sendJson(ctx, 201, repoJson(ctx.world, repo), { Location: `${API_BASE}/repos/${owner.login}/${name}` });
}

export const repoRoutes: readonly Route[] = [
  // gh auth status reads X-OAuth-Scopes off the API root.
  route('GET', '/', (ctx) => {
    sendJson(ctx, 200, {
      current_user_url: `${API_BASE}/user`,
      repository_url: `${API_BASE}/repos/{owner}/{repo}`,
      user_url: `${API_BASE}/users/{user}`,
      rate_limit_url: `${API_BASE}/rate_limit`,
    });
  }),

  route('GET', '/user', (ctx) => {
    const me = requireViewer(ctx);
    if (me) sendJson(ctx, 200, userJson(me));
  }),

  route('GET', '/users/:login', (ctx, p) => {
    const a = ctx.world.accounts.get(p.login!.toLowerCase());
    if (!a) return notFound(ctx, D.getUser);
    sendJson(ctx, 200, userJson(a));
  }),

  route('GET', '/orgs/:org', (ctx, p) => {
    const a = ctx.world.accounts.get(p.org!.toLowerCase());
    if (!a || a.type !== 'Organization') return notFound(ctx, 'https://docs.github.com/rest/orgs/orgs#get-an-organization');
    sendJson(ctx, 200, accountJson(a));
  }),

  route('POST', '/user/repos', async (ctx) => {
    const me = requireViewer(ctx);
    if (me) await createRepo(ctx, me, D.createUserRepo);
  }),

  route('POST', '/orgs/:org/repos', async (ctx, p) => {
    if (!requireViewer(ctx)) return;
    const org = ctx.world.accounts.get(p.org!.toLowerCase());
    if (!org || org.type !== 'Organization') return notFound(ctx, D.createOrgRepo);
    await createRepo(ctx, org, D.createOrgRepo);
  }),

  route('GET', '/repos/:owner/:repo', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.getRepo);
    if (repo) sendJson(ctx, 200, repoJson(ctx.world, repo));
  }),

  route('GET', '/repos/:owner/:repo/tags', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!);
    if (!repo) return;
    const full = `${repo.owner.login}/${repo.name}`;
    sendJson(
      ctx,
      200,
      [...repo.tags].map(([name, sha]) => ({
        name,
        commit: { sha, url: `${API_BASE}/repos/${full}/commits/${sha}` },
        zipball_url: `${API_BASE}/repos/${full}/zipball/refs/tags/${name}`,
        tarball_url: `${API_BASE}/repos/${full}/tarball/refs/tags/${name}`,
      })),
    );
  }),

  route('GET', '/repos/:owner/:repo/git/ref/:ref+', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.getRef);
    if (!repo) return;
    const ref = p.ref!;
    const sha = ref.startsWith('tags/') ? repo.tags.get(ref.slice(5)) : ref.startsWith('heads/') ? repo.branches.get(ref.slice(6)) : undefined;
    if (!sha) return notFound(ctx, D.getRef);
    const full = `${repo.owner.login}/${repo.name}`;
    sendJson(ctx, 200, { ref: `refs/${ref}`, url: `${API_BASE}/repos/${full}/git/refs/${ref}`, object: { sha, type: 'commit', url: `${API_BASE}/repos/${full}/git/commits/${sha}` } });
  }),

  // gh release delete --cleanup-tag. Deleting a release leaves its tag; this removes it.
  route('DELETE', '/repos/:owner/:repo/git/refs/:ref+', (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.deleteRef);
    if (!repo) return;
    const ref = p.ref!;
    if (!ref.startsWith('tags/') || !ctx.world.deleteTag(repo, ref.slice(5))) {
      return sendError(ctx, 422, 'Reference does not exist', D.deleteRef);
    }
    sendNoContent(ctx);
  }),
];
