/**
 * REST JSON shapes, with GitHub's field names. Only the fields a client could plausibly read are
 * filled in; the URLs point back at the emulator's hosts so following any of them stays local.
 */
import { API_BASE, UPLOADS_BASE, WEB_BASE } from './hosts.js';
import type { Account, Asset, Release, Repo, World } from './state.js';

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
