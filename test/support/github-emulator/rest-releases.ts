/**
 * REST routes for releases. GitHub rules emulated here:
 * - drafts carry no tag: publishing (create with draft false, or PATCH draft:false) creates the tag
 *   if missing (in the bare repository too, on the commit target_commitish names), and fails with
 *   422 "Repository is empty." while the repository has no commit;
 * - only one published release per tag (422 already_exists on tag_name);
 * - GET /releases/tags/T sees published releases only; drafts are listed and fetchable by id for
 *   users with push access;
 * - deleting a release keeps its tag.
 */
import { randomBytes } from 'node:crypto';
import { visibleRepo, writableRepo } from './access.js';
import { API_BASE } from './hosts.js';
import { bool, type Ctx, type JsonObject, notFound, paginate, readJsonObject, sendError, sendJson, sendNoContent, str, validationFailed } from './http.js';
import { type Route, route } from './router.js';
import { releaseJson } from './serialize.js';
import type { Release, Repo } from './state.js';

const D = {
  create: 'https://docs.github.com/rest/releases/releases#create-a-release',
  update: 'https://docs.github.com/rest/releases/releases#update-a-release',
  get: 'https://docs.github.com/rest/releases/releases#get-a-release',
  byTag: 'https://docs.github.com/rest/releases/releases#get-a-release-by-tag-name',
  latest: 'https://docs.github.com/rest/releases/releases#get-the-latest-release',
  list: 'https://docs.github.com/rest/releases/releases#list-releases',
  del: 'https://docs.github.com/rest/releases/releases#delete-a-release',
};

/** Anonymous callers (and, on GitHub, anyone without push access) never see drafts. */
function canSeeDrafts(ctx: Ctx): boolean {
  return ctx.caller.kind === 'viewer';
}

/**
 * Checks that `release`, about to be published as `tagName`, may be, and creates the tag.
 * Answers the 422 itself and returns false when it may not.
 */
function publishChecks(ctx: Ctx, repo: Repo, release: Pick<Release, 'id' | 'targetCommitish'>, tagName: string, docs: string): boolean {
  if (repo.headSha === null) {
    validationFailed(ctx, docs, [{ resource: 'Release', code: 'custom', message: 'Repository is empty.' }]);
    return false;
  }
  if (repo.releases.some((r) => r.id !== release.id && !r.draft && r.tagName === tagName)) {
    validationFailed(ctx, docs, [{ resource: 'Release', code: 'already_exists', field: 'tag_name' }]);
    return false;
  }
  if (!repo.tags.has(tagName)) {
    // The tag goes on the commit the target names (a branch or a sha in the repository); GitHub
    // refuses a target it cannot resolve.
    const sha = ctx.world.resolveCommit(repo, release.targetCommitish || repo.defaultBranch);
    if (!sha) {
      validationFailed(ctx, docs, [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }]);
      return false;
    }
    try {
      ctx.world.setTag(repo, tagName, sha);
    } catch {
      // git refused the ref name (`git check-ref-format` rules: spaces, `..`, `~`, …).
      validationFailed(ctx, docs, [{ resource: 'Release', code: 'custom', field: 'tag_name', message: 'tag_name is not a valid tag' }]);
      return false;
    }
  }
  return true;
}

/** GitHub validates bodies against its schema first and answers such misses with this message. */
function invalidRequest(ctx: Ctx, docs: string, what: string): void {
  sendError(ctx, 422, `Invalid request.\n\n${what}`, docs);
}

function checkTypes(ctx: Ctx, body: JsonObject, docs: string): boolean {
  for (const k of ['tag_name', 'target_commitish', 'name', 'body'] as const) {
    if (body[k] !== undefined && body[k] !== null && typeof body[k] !== 'string') {
      invalidRequest(ctx, docs, `For 'properties/${k}', ${JSON.stringify(body[k])} is not a string.`);
      return false;
    }
  }
  for (const k of ['draft', 'prerelease'] as const) {
    if (body[k] !== undefined && typeof body[k] !== 'boolean') {
      invalidRequest(ctx, docs, `For 'properties/${k}', ${JSON.stringify(body[k])} is not a boolean.`);
      return false;
    }
  }
  return true;
}

function releaseFor(ctx: Ctx, repo: Repo, idText: string, docs: string): Release | undefined {
  const release = /^\d+$/.test(idText) ? ctx.world.findRelease(repo, Number(idText)) : undefined;
  if (!release || (release.draft && !canSeeDrafts(ctx))) {
    notFound(ctx, docs);
    return undefined;
  }
  return release;
}

export const releaseRoutes: readonly Route[] = [
  route('GET', '/repos/:owner/:repo/releases', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.list);
    if (!repo) return;
    const all = ctx.world.sortedReleases(repo).filter((r) => !r.draft || canSeeDrafts(ctx));
    const { page, link } = paginate(all, ctx.query, `${API_BASE}/repositories/${repo.id}/releases`);
    sendJson(ctx, 200, page.map((r) => releaseJson(ctx.world, repo, r)), link ? { Link: link } : {});
  }),

  route('POST', '/repos/:owner/:repo/releases', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.create);
    if (!repo) return;
    const body = await readJsonObject(ctx);
    if (!body || !checkTypes(ctx, body, D.create)) return;
    const tagName = str(body.tag_name);
    if (!tagName) return invalidRequest(ctx, D.create, '"tag_name" wasn\'t supplied.');
    const draft = bool(body.draft) ?? false;
    const now = ctx.world.now();
    const release: Release = {
      id: ctx.world.id(),
      tagName,
      targetCommitish: str(body.target_commitish) ?? repo.defaultBranch,
      name: str(body.name) ?? null,
      body: str(body.body) ?? null,
      draft,
      prerelease: bool(body.prerelease) ?? false,
      author: ctx.world.viewerLogin,
      createdAt: now,
      publishedAt: draft ? null : now,
      assets: [],
      untaggedId: randomBytes(10).toString('hex'),
    };
    if (!draft && !publishChecks(ctx, repo, release, tagName, D.create)) return;
    repo.releases.push(release);
    const json = releaseJson(ctx.world, repo, release);
    sendJson(ctx, 201, json, { Location: String(json.url) });
  }),

  route('GET', '/repos/:owner/:repo/releases/latest', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.latest);
    if (!repo) return;
    const latest = ctx.world.latestRelease(repo);
    if (!latest) return notFound(ctx, D.latest);
    sendJson(ctx, 200, releaseJson(ctx.world, repo, latest));
  }),

  route('GET', '/repos/:owner/:repo/releases/tags/:tag+', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.byTag);
    if (!repo) return;
    const release = ctx.world.sortedReleases(repo).find((r) => !r.draft && r.tagName === p.tag);
    if (!release) return notFound(ctx, D.byTag);
    sendJson(ctx, 200, releaseJson(ctx.world, repo, release));
  }),

  route('GET', '/repos/:owner/:repo/releases/:id', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.get);
    if (!repo) return;
    const release = releaseFor(ctx, repo, p.id!, D.get);
    if (release) sendJson(ctx, 200, releaseJson(ctx.world, repo, release));
  }),

  route('PATCH', '/repos/:owner/:repo/releases/:id', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.update);
    if (!repo) return;
    const release = releaseFor(ctx, repo, p.id!, D.update);
    if (!release) return;
    const body = await readJsonObject(ctx);
    if (!body || !checkTypes(ctx, body, D.update)) return;
    const tagName = str(body.tag_name) ?? release.tagName;
    const targetCommitish = str(body.target_commitish) ?? release.targetCommitish;
    const draft = bool(body.draft) ?? release.draft;
    // Validate everything before touching the release: a refused PATCH changes nothing.
    if (!draft && !publishChecks(ctx, repo, { id: release.id, targetCommitish }, tagName, D.update)) return;
    release.tagName = tagName;
    release.targetCommitish = targetCommitish;
    if (body.name !== undefined) release.name = str(body.name) ?? null;
    if (body.body !== undefined) release.body = str(body.body) ?? null;
    release.prerelease = bool(body.prerelease) ?? release.prerelease;
    if (release.draft && !draft) release.publishedAt = ctx.world.now();
    if (draft) release.publishedAt = null;
    release.draft = draft;
    sendJson(ctx, 200, releaseJson(ctx.world, repo, release));
  }),

  route('DELETE', '/repos/:owner/:repo/releases/:id', (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.del);
    if (!repo) return;
    const release = releaseFor(ctx, repo, p.id!, D.del);
    if (!release) return;
    repo.releases = repo.releases.filter((r) => r !== release);
    sendNoContent(ctx);
  }),
];
