/**
 * REST JSON shapes, with GitHub's field names. Only the fields a client could plausibly read are
 * filled in; the URLs point back at the emulator's hosts so following any of them stays local.
 */
import { API_BASE, UPLOADS_BASE, WEB_BASE } from './hosts.js';
import type { Account, Asset, PullRequest, Release, Repo, World } from './state.js';

/** Opaque node ids, decodable so GraphQL `ownerId` inputs can be resolved. */
export const nodeId = (prefix: string, id: number): string => Buffer.from(`${prefix}:${id}`).toString('base64').replace(/=+$/, '');

export function accountJson(a: Account): Record<string, unknown> {
  return {
    login: a.login,
    id: a.id,
    node_id: nodeId(a.type === 'User' ? 'U' : 'O', a.id),
    avatar_url: `${WEB_BASE}/avatars/${a.login}`,
    url: `${API_BASE}/users/${a.login}`,
    html_url: `${WEB_BASE}/${a.login}`,
    repos_url: `${API_BASE}/users/${a.login}/repos`,
    type: a.type,
    site_admin: false,
  };
}

/** GET /user and GET /users/LOGIN add profile fields on top of the short form. */
export function userJson(a: Account): Record<string, unknown> {
  return { ...accountJson(a), name: a.login, company: null, blog: '', location: null, email: null, bio: null, public_repos: 0, followers: 0, following: 0, created_at: a.createdAt, updated_at: a.createdAt };
}

export function repoJson(world: World, r: Repo): Record<string, unknown> {
  const full = `${r.owner.login}/${r.name}`;
  const api = `${API_BASE}/repos/${full}`;
  return {
    id: r.id,
    node_id: nodeId('R', r.id),
    name: r.name,
    full_name: full,
    private: r.private,
    owner: accountJson(r.owner),
    html_url: `${WEB_BASE}/${full}`,
    description: r.description,
    fork: false,
    url: api,
    releases_url: `${api}/releases{/id}`,
    tags_url: `${api}/tags`,
    git_refs_url: `${api}/git/refs{/sha}`,
    created_at: r.createdAt,
    updated_at: r.pushedAt ?? r.createdAt,
    pushed_at: r.pushedAt,
    git_url: `git://${WEB_BASE.slice('http://'.length)}/${full}.git`,
    ssh_url: `git@${WEB_BASE.slice('http://'.length)}:${full}.git`,
    clone_url: `${WEB_BASE}/${full}.git`,
    homepage: null,
    size: r.headSha ? 1 : 0,
    language: null,
    has_issues: r.hasIssues,
    has_projects: true,
    has_downloads: true,
    has_wiki: r.hasWiki,
    has_pages: false,
    archived: false,
    disabled: false,
    visibility: r.private ? 'private' : 'public',
    forks_count: 0,
    stargazers_count: 0,
    watchers_count: 0,
    open_issues_count: 0,
    default_branch: r.defaultBranch,
    is_template: false,
    // The emulator has one user and it administers every repository it can see.
    permissions: { admin: true, maintain: true, push: true, triage: true, pull: true },
    ...(world.viewer.id === r.owner.id ? {} : { organization: accountJson(r.owner) }),
  };
}

export function assetJson(repo: Repo, a: Asset, release: Release, world: World): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  return {
    url: `${API_BASE}/repos/${full}/releases/assets/${a.id}`,
    id: a.id,
    node_id: nodeId('RA', a.id),
    name: a.name,
    label: a.label,
    uploader: accountJson(world.account(a.uploader)),
    content_type: a.contentType,
    state: 'uploaded',
    size: a.data.length,
    // GitHub added this in 2025; older clients ignore it.
    digest: `sha256:${a.sha256}`,
    download_count: a.downloadCount,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
    browser_download_url: `${WEB_BASE}/${full}/releases/download/${encodeURIComponent(release.tagName)}/${encodeURIComponent(a.name)}`,
  };
}

export function releaseJson(world: World, repo: Repo, r: Release): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const api = `${API_BASE}/repos/${full}/releases/${r.id}`;
  // Drafts have no tag yet: GitHub gives them an `untagged-…` page and no source archives.
  const htmlTag = r.draft ? `untagged-${r.untaggedId}` : encodeURIComponent(r.tagName);
  return {
    url: api,
    assets_url: `${api}/assets`,
    upload_url: `${UPLOADS_BASE}/repos/${full}/releases/${r.id}/assets{?name,label}`,
    html_url: `${WEB_BASE}/${full}/releases/tag/${htmlTag}`,
    id: r.id,
    author: accountJson(world.account(r.author)),
    node_id: nodeId('RE', r.id),
    tag_name: r.tagName,
    target_commitish: r.targetCommitish,
    name: r.name,
    draft: r.draft,
    prerelease: r.prerelease,
    created_at: r.createdAt,
    published_at: r.publishedAt,
    assets: r.assets.map((a) => assetJson(repo, a, r, world)),
    tarball_url: r.draft ? null : `${API_BASE}/repos/${full}/tarball/${encodeURIComponent(r.tagName)}`,
    zipball_url: r.draft ? null : `${API_BASE}/repos/${full}/zipball/${encodeURIComponent(r.tagName)}`,
    body: r.body,
  };
}

/** A pull request as GitHub lists it (GET /pulls); the single-item routes add computed fields. */
export function pullJson(world: World, repo: Repo, pr: PullRequest): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const api = `${API_BASE}/repos/${full}`;
  const html = `${WEB_BASE}/${full}/pull/${pr.number}`;
  const owner = accountJson(repo.owner);
  const repoBody = repoJson(world, repo);
  const author = world.account(pr.author);
  return {
    url: `${api}/pulls/${pr.number}`,
    id: pr.id,
    node_id: nodeId('PR', pr.id),
    html_url: html,
    diff_url: `${html}.diff`,
    patch_url: `${html}.patch`,
    issue_url: `${api}/issues/${pr.number}`,
    number: pr.number,
    state: pr.state,
    locked: false,
    title: pr.title,
    user: accountJson(author),
    body: pr.body,
    created_at: pr.createdAt,
    updated_at: pr.updatedAt,
    closed_at: pr.closedAt,
    merged_at: pr.mergedAt,
    merge_commit_sha: null,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    labels: [],
    milestone: null,
    draft: pr.draft,
    commits_url: `${api}/pulls/${pr.number}/commits`,
    review_comments_url: `${api}/pulls/${pr.number}/comments`,
    review_comment_url: `${api}/pulls/comments{/number}`,
    comments_url: `${api}/issues/${pr.number}/comments`,
    statuses_url: `${api}/statuses/${pr.headSha}`,
    head: { label: `${repo.owner.login}:${pr.headRef}`, ref: pr.headRef, sha: pr.headSha, user: owner, repo: repoBody },
    base: { label: `${repo.owner.login}:${pr.baseRef}`, ref: pr.baseRef, sha: pr.baseSha, user: owner, repo: repoBody },
    _links: {
      self: { href: `${api}/pulls/${pr.number}` },
      html: { href: html },
      issue: { href: `${api}/issues/${pr.number}` },
      comments: { href: `${api}/issues/${pr.number}/comments` },
      review_comments: { href: `${api}/pulls/${pr.number}/comments` },
      review_comment: { href: `${api}/pulls/comments{/number}` },
      commits: { href: `${api}/pulls/${pr.number}/commits` },
      statuses: { href: `${api}/statuses/${pr.headSha}` },
    },
    author_association: author.id === repo.owner.id ? 'OWNER' : 'MEMBER',
    auto_merge: null,
    active_lock_reason: null,
  };
}
