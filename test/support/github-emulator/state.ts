/**
 * The emulator's in-memory world: accounts, repositories, tags, releases, pull requests and asset
 * bytes. Handlers mutate it; tests only see frozen snapshots (see `snapshotRepo`).
 *
 * Each repository also has a real bare repository on disk (see git-repos.ts). It owns the git data:
 * `branches`, `tags` and `headSha` here are a cache of its refs, refreshed by `syncRefs` after every
 * push, and written through when the API changes a ref (a release creating its tag, a ref delete).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { GitStore } from './git-repos.js';
import { WEB_BASE } from './hosts.js';
import type { EmulatedRepo } from './types.js';

export interface Account {
  id: number;
  login: string;
  type: 'User' | 'Organization';
  createdAt: string;
}

export interface Asset {
  id: number;
  name: string;
  label: string;
  contentType: string;
  data: Buffer;
  sha256: string;
  uploader: string;
  createdAt: string;
  updatedAt: string;
  downloadCount: number;
}

export interface Release {
  id: number;
  tagName: string;
  targetCommitish: string;
  name: string | null;
  body: string | null;
  draft: boolean;
  prerelease: boolean;
  author: string;
  createdAt: string;
  publishedAt: string | null;
  assets: Asset[];
  /** Random suffix GitHub puts in a draft's html_url (`untagged-…`). */
  untaggedId: string;
}

export interface PullRequest {
  id: number;
  number: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  draft: boolean;
  /** As the client sent it; GitHub only reports it (true) for pull requests from forks. */
  maintainerCanModify: boolean;
  headRef: string;
  /** Last known sha of the head branch (kept when the branch is deleted). */
  headSha: string;
  baseRef: string;
  baseSha: string;
  author: string;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  /** Set when the head's commits reached the base branch by a push: GitHub then marks it merged. */
  mergedAt: string | null;
}

/** An issue (issues and pull requests share one number sequence per repository, as on GitHub). */
export interface Issue {
  id: number;
  number: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  /** GitHub's `state_reason`: completed / not_planned when closed, reopened after a reopen, else null */
  stateReason: 'completed' | 'not_planned' | 'reopened' | null;
  /** label names, in the order they were set */
  labels: string[];
  author: string;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
}

export interface Label {
  id: number;
  name: string;
  color: string;
  description: string | null;
}

export interface IssueComment {
  id: number;
  issueNumber: number;
  body: string;
  author: string;
  createdAt: string;
  updatedAt: string;
}

export interface Repo {
  id: number;
  owner: Account;
  name: string;
  description: string | null;
  private: boolean;
  defaultBranch: string;
  /** sha of the default branch head; null while the repository has no commit. */
  headSha: string | null;
  /** The bare repository on disk. */
  gitDir: string;
  /** branch name -> sha, from the bare repository. */
  branches: Map<string, string>;
  pulls: PullRequest[];
  createdAt: string;
  pushedAt: string | null;
  hasIssues: boolean;
  hasWiki: boolean;
  /** tag name -> commit sha */
  tags: Map<string, string>;
  releases: Release[];
  issues: Issue[];
  /** key: lower-case name (GitHub label names are case-insensitive) */
  labels: Map<string, Label>;
  comments: IssueComment[];
}

export class World {
  private nextId = 1000;
  readonly accounts = new Map<string, Account>();
  /** key: lower-case "owner/name" (GitHub names are case-insensitive) */
  readonly repos = new Map<string, Repo>();
  /** The single token the emulator accepts, and whether it was revoked. */
  tokenRevoked = false;

  constructor(
    readonly viewerLogin: string,
    readonly token: string,
    readonly scopes: readonly string[],
    /** Where the bare repositories live. */
    readonly git: GitStore,
    /** Default branch of repositories created through the API (GitHub's per-account setting). */
    readonly newRepoBranch = 'main',
    /** HMAC key for signed download URLs on the objects host. */
    readonly signingKey: Buffer = randomBytes(32),
  ) {
    this.account(viewerLogin, 'User');
  }

  id(): number {
    return this.nextId++;
  }

  now(): string {
    // GitHub timestamps are ISO-8601 in UTC without milliseconds.
    return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  get viewer(): Account {
    const a = this.accounts.get(this.viewerLogin.toLowerCase());
    if (!a) throw new Error('viewer account missing');
    return a;
  }

  /** Find or create an account; owners other than the viewer are organizations. */
  account(login: string, type: Account['type'] = 'Organization'): Account {
    const key = login.toLowerCase();
    let a = this.accounts.get(key);
    if (!a) {
      a = { id: this.id(), login, type, createdAt: this.now() };
      this.accounts.set(key, a);
    }
    return a;
  }

  findRepo(owner: string, name: string): Repo | undefined {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  findRepoById(id: number): Repo | undefined {
    for (const r of this.repos.values()) if (r.id === id) return r;
    return undefined;
  }

  addRepo(owner: string, name: string, opts: { private: boolean; empty: boolean; defaultBranch: string; description?: string | null }): Repo {
    if (this.findRepo(owner, name)) throw new Error(`repository ${owner}/${name} already exists`);
    const now = this.now();
    const account = this.account(owner, owner.toLowerCase() === this.viewerLogin.toLowerCase() ? 'User' : 'Organization');
    const description = opts.description ?? null;
    // GitHub's auto_init README: the name as a title, then the description if there is one.
    const readme = opts.empty
      ? undefined
      : { text: `# ${name}\n${description ? `${description}\n` : ''}`, author: { name: this.viewer.login, email: `${this.viewer.id}+${this.viewer.login}@users.noreply.github.com` } };
    const disk = this.git.create(account.login, name, { defaultBranch: opts.defaultBranch, ...(readme ? { readme } : {}) });
    const repo: Repo = {
      id: this.id(),
      owner: account,
      name,
      description,
      private: opts.private,
      defaultBranch: opts.defaultBranch,
      headSha: disk.headSha,
      gitDir: disk.gitDir,
      branches: new Map(disk.headSha ? [[opts.defaultBranch, disk.headSha]] : []),
      pulls: [],
      createdAt: now,
      pushedAt: opts.empty ? null : now,
      hasIssues: true,
      hasWiki: true,
      tags: new Map(),
      releases: [],
      issues: [],
      labels: new Map(),
      comments: [],
    };
    this.repos.set(`${owner}/${name}`.toLowerCase(), repo);
    return repo;
  }

  /**
   * Re-reads branches and tags from the bare repository after a push. Like GitHub: the first push
   * into an empty repository that lacks the default branch makes a pushed branch the default; an
   * open pull request whose head branch is gone is closed; open pull requests follow their head.
   */
  syncRefs(repo: Repo): void {
    const wasEmpty = repo.branches.size === 0;
    const { branches, tags } = this.git.refs(repo.gitDir);
    if (wasEmpty && branches.size > 0 && !branches.has(repo.defaultBranch)) {
      // GitHub takes the branch that was pushed; with several at once we take the first by name.
      repo.defaultBranch = [...branches.keys()].sort()[0]!;
      this.git.setHead(repo.gitDir, repo.defaultBranch);
    }
    const changed = [...branches].some(([b, sha]) => repo.branches.get(b) !== sha) || branches.size !== repo.branches.size;
    repo.branches = branches;
    repo.tags = tags;
    repo.headSha = branches.get(repo.defaultBranch) ?? null;
    if (changed) repo.pushedAt = this.now();
    for (const pr of repo.pulls) {
      if (pr.state !== 'open') continue;
      const head = branches.get(pr.headRef);
      if (head === undefined) {
        pr.state = 'closed';
        pr.closedAt = pr.updatedAt = this.now();
      } else if (head !== pr.headSha) {
        pr.headSha = head;
        pr.updatedAt = this.now();
        this.git.updateRef(repo.gitDir, `refs/pull/${pr.number}/head`, head);
      }
      const base = branches.get(pr.baseRef);
      if (base !== undefined) pr.baseSha = base;
      // Like GitHub: pushing the head's commits into the base (a merge done outside the web UI)
      // marks the pull request merged and closes it.
      if (pr.state === 'open' && base !== undefined && this.git.aheadBy(repo.gitDir, base, pr.headSha) === 0) {
        pr.state = 'closed';
        pr.closedAt = pr.mergedAt = pr.updatedAt = this.now();
      }
    }
  }

  /** Creates a tag in the bare repository and the cache. `sha` must be a commit in the repository. */
  setTag(repo: Repo, tag: string, sha: string): void {
    this.git.updateRef(repo.gitDir, `refs/tags/${tag}`, sha);
    repo.tags.set(tag, sha);
  }

  deleteTag(repo: Repo, tag: string): boolean {
    if (!repo.tags.has(tag)) return false;
    this.git.deleteRef(repo.gitDir, `refs/tags/${tag}`);
    repo.tags.delete(tag);
    return true;
  }

  /** A commit sha for a branch name, `refs/heads/…` name or sha; undefined when the repository has none such. */
  resolveCommit(repo: Repo, rev: string): string | undefined {
    const branch = repo.branches.get(rev.replace(/^refs\/heads\//, ''));
    if (branch) return branch;
    return /^[0-9a-f]{7,40}$/.test(rev) ? this.git.commit(repo.gitDir, rev) : undefined;
  }

  /** The next issue or pull request number: the two share one sequence per repository. */
  nextNumber(repo: Repo): number {
    return repo.pulls.length + repo.issues.length + 1;
  }

  /**
   * An `updated_at` for a change to `previous`: now, but never at or before `previous` while that
   * is still the current second, so every change is seen by a client polling with `since`
   * (GitHub's clock is per-second too; two changes in one second would share it).
   */
  bump(previous: string): string {
    const now = this.now();
    return now > previous ? now : previous;
  }

  /** A label by name (case-insensitive), created with GitHub's default colour when absent, as issue writes do. */
  ensureLabel(repo: Repo, name: string): Label {
    const key = name.toLowerCase();
    let l = repo.labels.get(key);
    if (!l) {
      l = { id: this.id(), name, color: 'ededed', description: null };
      repo.labels.set(key, l);
    }
    return l;
  }

  findRelease(repo: Repo, id: number): Release | undefined {
    return repo.releases.find((r) => r.id === id);
  }

  findAsset(repo: Repo, id: number): { release: Release; asset: Asset } | undefined {
    for (const release of repo.releases) {
      const asset = release.assets.find((a) => a.id === id);
      if (asset) return { release, asset };
    }
    return undefined;
  }

  /** Newest first, as GitHub lists them; ids break ties within the same second. */
  sortedReleases(repo: Repo): Release[] {
    return [...repo.releases].sort((a, b) => (a.createdAt === b.createdAt ? b.id - a.id : a.createdAt < b.createdAt ? 1 : -1));
  }

  /** GitHub's "latest": the newest published, non-prerelease release. */
  latestRelease(repo: Repo): Release | undefined {
    return this.sortedReleases(repo)
      .filter((r) => !r.draft && !r.prerelease)
      .sort((a, b) => ((a.publishedAt ?? '') < (b.publishedAt ?? '') ? 1 : (a.publishedAt ?? '') > (b.publishedAt ?? '') ? -1 : b.id - a.id))[0];
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A deep, frozen copy for tests: they can look but not reach into the live state. */
export function snapshotRepo(world: World, repo: Repo): EmulatedRepo {
  const snap: EmulatedRepo = {
    id: repo.id,
    fullName: `${repo.owner.login}/${repo.name}`,
    owner: repo.owner.login,
    name: repo.name,
    isPrivate: repo.private,
    defaultBranch: repo.defaultBranch,
    empty: repo.headSha === null,
    tags: [...repo.tags.keys()].sort(),
    branches: Object.freeze(Object.fromEntries([...repo.branches].sort(([a], [b]) => (a < b ? -1 : 1)))),
    gitDir: repo.gitDir,
    pulls: Object.freeze(
      [...repo.pulls]
        .sort((a, b) => a.number - b.number)
        .map((p) =>
          Object.freeze({
            number: p.number,
            title: p.title,
            body: p.body,
            state: p.state,
            draft: p.draft,
            head: Object.freeze({ ref: p.headRef, sha: p.headSha, label: `${repo.owner.login}:${p.headRef}` }),
            base: Object.freeze({ ref: p.baseRef, sha: p.baseSha }),
            user: p.author,
            html_url: `${WEB_BASE}/${repo.owner.login}/${repo.name}/pull/${p.number}`,
            created_at: p.createdAt,
            closed_at: p.closedAt,
            merged: p.mergedAt !== null,
          }),
        ),
    ),
    issues: Object.freeze(
      [...repo.issues]
        .sort((a, b) => a.number - b.number)
        .map((i) =>
          Object.freeze({ number: i.number, title: i.title, body: i.body, state: i.state, state_reason: i.stateReason, labels: Object.freeze([...i.labels]), user: i.author, created_at: i.createdAt, updated_at: i.updatedAt, closed_at: i.closedAt }),
        ),
    ),
    labels: Object.freeze([...repo.labels.values()].map((l) => l.name).sort()),
    comments: Object.freeze(
      [...repo.comments].sort((a, b) => a.id - b.id).map((c) => Object.freeze({ id: c.id, issue_number: c.issueNumber, body: c.body, user: c.author, created_at: c.createdAt, updated_at: c.updatedAt })),
    ),
    releases: world.sortedReleases(repo).map((r) =>
      Object.freeze({
        id: r.id,
        tag_name: r.tagName,
        name: r.name,
        body: r.body,
        draft: r.draft,
        prerelease: r.prerelease,
        target_commitish: r.targetCommitish,
        created_at: r.createdAt,
        published_at: r.publishedAt,
        assets: Object.freeze(
          r.assets.map((a) =>
            Object.freeze({
              id: a.id,
              name: a.name,
              label: a.label,
              content_type: a.contentType,
              size: a.data.length,
              sha256: a.sha256,
              state: 'uploaded' as const,
              download_count: a.downloadCount,
            }),
          ),
        ),
      }),
    ),
  };
  return Object.freeze(snap);
}
