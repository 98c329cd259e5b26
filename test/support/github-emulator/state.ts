/**
 * The emulator's in-memory world: accounts, repositories, tags, releases and asset bytes.
 * Handlers mutate it; tests only see frozen snapshots (see `snapshotRepo`).
 */
import { createHash, randomBytes } from 'node:crypto';
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

export interface Repo {
  id: number;
  owner: Account;
  name: string;
  description: string | null;
  private: boolean;
  defaultBranch: string;
  /** sha of the default branch head; null while the repository has no commit. */
  headSha: string | null;
  createdAt: string;
  pushedAt: string | null;
  hasIssues: boolean;
  hasWiki: boolean;
  /** tag name -> commit sha */
  tags: Map<string, string>;
  releases: Release[];
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
    const repo: Repo = {
      id: this.id(),
      owner: this.account(owner, owner.toLowerCase() === this.viewerLogin.toLowerCase() ? 'User' : 'Organization'),
      name,
      description: opts.description ?? null,
      private: opts.private,
      defaultBranch: opts.defaultBranch,
      headSha: opts.empty ? null : fakeSha(`${owner}/${name}@init`),
      createdAt: now,
      pushedAt: opts.empty ? null : now,
      hasIssues: true,
      hasWiki: true,
      tags: new Map(),
      releases: [],
    };
    this.repos.set(`${owner}/${name}`.toLowerCase(), repo);
    return repo;
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

export function fakeSha(seed: string): string {
  return createHash('sha1').update(seed).digest('hex');
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
