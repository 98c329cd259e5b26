/**
 * The slice of GitHub's GraphQL schema that gh's repo and release commands read, resolved from the
 * emulator's state. Field names and enum values follow GitHub's schema; anything not listed here is
 * refused with GitHub's "Field 'x' doesn't exist on type 'Y'" so a gap is visible, not silent.
 */
import { API_BASE, WEB_BASE } from '../hosts.js';
import type { Caller } from '../http.js';
import { nodeId } from '../serialize.js';
import type { Account, Asset, Release, Repo, World } from '../state.js';
import { ArgumentError, type Args, type FieldDef, FieldError, type Schema } from './execute.js';

export interface GqlCtx {
  world: World;
  caller: Caller;
}

type Fields<P> = Record<string, FieldDef<P, GqlCtx>>;
const scalar = <P>(type: string, get: (p: P, ctx: GqlCtx) => unknown): FieldDef<P, GqlCtx> => ({ type, resolve: (p, _a, c) => get(p, c) });
const arg = (a: Args, k: string): string | undefined => (typeof a[k] === 'string' ? a[k] : undefined);

interface ReleaseRef {
  repo: Repo;
  release: Release;
}
interface AssetRef {
  repo: Repo;
  release: Release;
  asset: Asset;
}
interface Connection<T> {
  nodes: T[];
  edges: Array<{ cursor: string; node: T }>;
  totalCount: number;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

const cursorOf = (i: number): string => Buffer.from(`cursor:v2:${i}`).toString('base64');
function indexOf(cursor: unknown): number | undefined {
  if (typeof cursor !== 'string') return undefined;
  const m = /^cursor:v2:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString('utf8'));
  return m ? Number(m[1]) : undefined;
}

/** Relay pagination with GitHub's rules: `first` or `last` is required, 100 at most. */
function connection<T>(all: T[], args: Args, name: string): Connection<T> {
  const first = typeof args.first === 'number' ? args.first : undefined;
  const last = typeof args.last === 'number' ? args.last : undefined;
  if (first === undefined && last === undefined) throw new ArgumentError(`You must provide a \`first\` or \`last\` value to properly paginate the \`${name}\` connection.`);
  for (const [k, v] of [['first', first], ['last', last]] as const) {
    if (v !== undefined && v > 100) throw new ArgumentError(`Requesting ${v} records on the \`${name}\` connection exceeds the \`${k}\` limit of 100 records.`);
  }
  let start = 0;
  let end = all.length;
  const after = indexOf(args.after);
  const before = indexOf(args.before);
  if (after !== undefined) start = Math.min(after + 1, all.length);
  if (before !== undefined) end = Math.max(Math.min(before, end), start);
  if (first !== undefined) end = Math.min(end, start + first);
  if (last !== undefined) start = Math.max(start, end - last);
  const nodes = all.slice(start, end);
  const edges = nodes.map((node, i) => ({ cursor: cursorOf(start + i), node }));
  return {
    nodes,
    edges,
    totalCount: all.length,
    pageInfo: { hasNextPage: end < all.length, hasPreviousPage: start > 0, startCursor: edges[0]?.cursor ?? null, endCursor: edges[edges.length - 1]?.cursor ?? null },
  };
}

function visible(ctx: GqlCtx, owner: string, name: string): Repo {
  const repo = ctx.world.findRepo(owner, name);
  if (!repo || (repo.private && ctx.caller.kind !== 'viewer')) throw new FieldError('NOT_FOUND', `Could not resolve to a Repository with the name '${owner}/${name}'.`);
  return repo;
}

const seeDrafts = (ctx: GqlCtx): boolean => ctx.caller.kind === 'viewer';

/** An owner's repositories, as `gh repo list` asks for them (privacy, isFork, orderBy). */
function ownedRepositories(a: Account, args: Args, c: GqlCtx): Connection<Repo> {
  let repos = [...c.world.repos.values()].filter((r) => r.owner.id === a.id && (!r.private || c.caller.kind === 'viewer'));
  if (args.privacy === 'PRIVATE') repos = repos.filter((r) => r.private);
  if (args.privacy === 'PUBLIC') repos = repos.filter((r) => !r.private);
  if (args.isFork === true) repos = [];
  const order = args.orderBy as { field?: string; direction?: string } | null | undefined;
  const key = (r: Repo): string => (order?.field === 'NAME' ? r.name.toLowerCase() : order?.field === 'CREATED_AT' ? r.createdAt : (r.pushedAt ?? r.createdAt));
  repos.sort((x, y) => (key(x) === key(y) ? y.id - x.id : key(x) < key(y) ? 1 : -1));
  if (order?.direction === 'ASC') repos.reverse();
  return connection(repos, args, 'repositories');
}

const accountFields: Fields<Account> = {
  id: scalar('ID', (a) => nodeId(a.type === 'User' ? 'U' : 'O', a.id)),
  databaseId: scalar('Int', (a) => a.id),
  login: scalar('String', (a) => a.login),
  name: scalar('String', (a) => a.login),
  url: scalar('URI', (a) => `${WEB_BASE}/${a.login}`),
  avatarUrl: scalar('URI', (a) => `${WEB_BASE}/avatars/${a.login}`),
  repositories: { type: 'RepositoryConnection', resolve: (a, args, c) => ownedRepositories(a, args, c) },
};

const refFields: Fields<{ repo: Repo; name: string; prefix: string; sha: string }> = {
  id: scalar('ID', (r) => Buffer.from(`REF:${r.repo.id}:${r.prefix}${r.name}`).toString('base64')),
  name: scalar('String', (r) => r.name),
  prefix: scalar('String', (r) => r.prefix),
  target: { type: 'Commit', resolve: (r) => ({ oid: r.sha }) },
};

const repositoryFields: Fields<Repo> = {
  id: scalar('ID', (r) => nodeId('R', r.id)),
  databaseId: scalar('Int', (r) => r.id),
  name: scalar('String', (r) => r.name),
  nameWithOwner: scalar('String', (r) => `${r.owner.login}/${r.name}`),
  owner: { type: 'RepositoryOwner', resolve: (r) => r.owner },
  description: scalar('String', (r) => r.description),
  url: scalar('URI', (r) => `${WEB_BASE}/${r.owner.login}/${r.name}`),
  sshUrl: scalar('GitSSHRemote', (r) => `git@github.localhost:${r.owner.login}/${r.name}.git`),
  homepageUrl: scalar('URI', () => null),
  isPrivate: scalar('Boolean', (r) => r.private),
  visibility: scalar('RepositoryVisibility', (r) => (r.private ? 'PRIVATE' : 'PUBLIC')),
  isEmpty: scalar('Boolean', (r) => r.headSha === null),
  isFork: scalar('Boolean', () => false),
  isArchived: scalar('Boolean', () => false),
  isTemplate: scalar('Boolean', () => false),
  isMirror: scalar('Boolean', () => false),
  isInOrganization: scalar('Boolean', (r) => r.owner.type === 'Organization'),
  hasIssuesEnabled: scalar('Boolean', (r) => r.hasIssues),
  hasWikiEnabled: scalar('Boolean', (r) => r.hasWiki),
  hasProjectsEnabled: scalar('Boolean', () => true),
  createdAt: scalar('DateTime', (r) => r.createdAt),
  updatedAt: scalar('DateTime', (r) => r.pushedAt ?? r.createdAt),
  pushedAt: scalar('DateTime', (r) => r.pushedAt),
  stargazerCount: scalar('Int', () => 0),
  forkCount: scalar('Int', () => 0),
  diskUsage: scalar('Int', (r) => (r.headSha ? 1 : 0)),
  viewerPermission: scalar('RepositoryPermission', (_r, c) => (c.caller.kind === 'viewer' ? 'ADMIN' : 'READ')),
  viewerCanAdminister: scalar('Boolean', (_r, c) => c.caller.kind === 'viewer'),
  parent: { type: 'Repository', resolve: () => null },
  templateRepository: { type: 'Repository', resolve: () => null },
  // An empty repository has no default branch ref yet (GitHub answers null).
  defaultBranchRef: { type: 'Ref', resolve: (r) => (r.headSha ? { repo: r, name: r.defaultBranch, prefix: 'refs/heads/', sha: r.headSha } : null) },
  ref: {
    type: 'Ref',
    resolve: (r, a) => {
      const q = arg(a, 'qualifiedName') ?? '';
      const tag = q.replace(/^refs\/tags\//, '');
      if (q.startsWith('refs/tags/') || r.tags.has(tag)) {
        const sha = r.tags.get(tag);
        return sha ? { repo: r, name: tag, prefix: 'refs/tags/', sha } : null;
      }
      const head = q.replace(/^refs\/heads\//, '');
      const sha = r.branches.get(head);
      return sha ? { repo: r, name: head, prefix: 'refs/heads/', sha } : null;
    },
  },
  releases: {
    type: 'ReleaseConnection',
    resolve: (r, a, c) => {
      let all = c.world.sortedReleases(r).filter((x) => !x.draft || seeDrafts(c));
      const order = a.orderBy as { field?: string; direction?: string } | null | undefined;
      if (order?.field === 'NAME') all = [...all].sort((x, y) => (x.name ?? '').localeCompare(y.name ?? ''));
      if (order?.direction === 'ASC') all = [...all].reverse();
      return connection(
        all.map((release) => ({ repo: r, release })),
        a,
        'releases',
      );
    },
  },
  // Drafts have no tag yet, but GitHub still finds them by their tag_name for users with push access.
  release: {
    type: 'Release',
    resolve: (r, a, c) => {
      const release = c.world.sortedReleases(r).find((x) => x.tagName === arg(a, 'tagName') && (!x.draft || seeDrafts(c)));
      return release ? { repo: r, release } : null;
    },
  },
  latestRelease: {
    type: 'Release',
    resolve: (r, _a, c) => {
      const release = c.world.latestRelease(r);
      return release ? { repo: r, release } : null;
    },
  },
};

const releaseFields: Fields<ReleaseRef> = {
  id: scalar('ID', ({ release }) => nodeId('RE', release.id)),
  databaseId: scalar('Int', ({ release }) => release.id),
  name: scalar('String', ({ release }) => release.name),
  tagName: scalar('String', ({ release }) => release.tagName),
  description: scalar('String', ({ release }) => release.body),
  isDraft: scalar('Boolean', ({ release }) => release.draft),
  isPrerelease: scalar('Boolean', ({ release }) => release.prerelease),
  isLatest: scalar('Boolean', ({ repo, release }, c) => c.world.latestRelease(repo) === release),
  createdAt: scalar('DateTime', ({ release }) => release.createdAt),
  publishedAt: scalar('DateTime', ({ release }) => release.publishedAt),
  updatedAt: scalar('DateTime', ({ release }) => release.publishedAt ?? release.createdAt),
  url: scalar('URI', ({ repo, release }) => `${WEB_BASE}/${repo.owner.login}/${repo.name}/releases/tag/${encodeURIComponent(release.tagName)}`),
  author: { type: 'User', resolve: ({ release }, _a, c) => c.world.account(release.author) },
  tag: {
    type: 'Ref',
    resolve: ({ repo, release }) => {
      const sha = release.draft ? undefined : repo.tags.get(release.tagName);
      return sha ? { repo, name: release.tagName, prefix: 'refs/tags/', sha } : null;
    },
  },
  tagCommit: { type: 'Commit', resolve: ({ repo, release }) => (release.draft || !repo.tags.get(release.tagName) ? null : { oid: repo.tags.get(release.tagName) }) },
  releaseAssets: {
    type: 'ReleaseAssetConnection',
    resolve: ({ repo, release }, a) => {
      const name = arg(a, 'name');
      const assets = release.assets.filter((x) => name === undefined || x.name === name);
      return connection(
        assets.map((asset) => ({ repo, release, asset })),
        a,
        'releaseAssets',
      );
    },
  },
};

const assetFields: Fields<AssetRef> = {
  id: scalar('ID', ({ asset }) => nodeId('RA', asset.id)),
  databaseId: scalar('Int', ({ asset }) => asset.id),
  name: scalar('String', ({ asset }) => asset.name),
  size: scalar('Int', ({ asset }) => asset.data.length),
  contentType: scalar('String', ({ asset }) => asset.contentType),
  downloadCount: scalar('Int', ({ asset }) => asset.downloadCount),
  createdAt: scalar('DateTime', ({ asset }) => asset.createdAt),
  updatedAt: scalar('DateTime', ({ asset }) => asset.updatedAt),
  url: scalar('URI', ({ repo, asset }) => `${API_BASE}/repos/${repo.owner.login}/${repo.name}/releases/assets/${asset.id}`),
  downloadUrl: scalar('URI', ({ repo, release, asset }) => `${WEB_BASE}/${repo.owner.login}/${repo.name}/releases/download/${encodeURIComponent(release.tagName)}/${encodeURIComponent(asset.name)}`),
};

function connectionFields(nodeType: string): Fields<Connection<unknown>> {
  return {
    nodes: { type: nodeType, list: true, resolve: (c) => c.nodes },
    edges: { type: `${nodeType}Edge`, list: true, resolve: (c) => c.edges },
    totalCount: scalar('Int', (c) => c.totalCount),
    pageInfo: { type: 'PageInfo', resolve: (c) => c.pageInfo },
  };
}
const edgeFields = (nodeType: string): Fields<{ cursor: string; node: unknown }> => ({
  cursor: scalar('String', (e) => e.cursor),
  node: { type: nodeType, resolve: (e) => e.node },
});

const queryFields: Fields<object> = {
  repository: { type: 'Repository', resolve: (_p, a, c) => visible(c, arg(a, 'owner') ?? '', arg(a, 'name') ?? '') },
  viewer: { type: 'User', resolve: (_p, _a, c) => (c.caller.kind === 'viewer' ? c.caller.account : null) },
  user: {
    type: 'User',
    resolve: (_p, a, c) => {
      const acc = c.world.accounts.get((arg(a, 'login') ?? '').toLowerCase());
      if (!acc || acc.type !== 'User') throw new FieldError('NOT_FOUND', `Could not resolve to a User with the login of '${arg(a, 'login') ?? ''}'.`);
      return acc;
    },
  },
  organization: {
    type: 'Organization',
    resolve: (_p, a, c) => {
      const acc = c.world.accounts.get((arg(a, 'login') ?? '').toLowerCase());
      if (!acc || acc.type !== 'Organization') throw new FieldError('NOT_FOUND', `Could not resolve to an Organization with the login of '${arg(a, 'login') ?? ''}'.`);
      return acc;
    },
  },
  repositoryOwner: { type: 'RepositoryOwner', resolve: (_p, a, c) => c.world.accounts.get((arg(a, 'login') ?? '').toLowerCase()) ?? null },
};

/** createRepository, as gh repo create uses it when no README/licence/gitignore is requested. */
const mutationFields: Fields<object> = {
  createRepository: {
    type: 'CreateRepositoryPayload',
    resolve: (_p, a, c) => {
      if (c.caller.kind !== 'viewer') throw new FieldError('FORBIDDEN', 'Resource not accessible by integration');
      const input = (a.input ?? {}) as Record<string, unknown>;
      const name = typeof input.name === 'string' ? input.name.trim().replace(/[^A-Za-z0-9._-]/g, '-') : '';
      if (!name) throw new FieldError('UNPROCESSABLE', 'Name is required');
      let owner = c.caller.account;
      if (typeof input.ownerId === 'string') {
        const m = /^[UO]:(\d+)$/.exec(Buffer.from(input.ownerId, 'base64').toString('utf8'));
        const found = m ? [...c.world.accounts.values()].find((x) => x.id === Number(m[1])) : undefined;
        if (!found) throw new FieldError('NOT_FOUND', `Could not resolve to a node with the global id of '${input.ownerId}'`);
        owner = found;
      }
      if (c.world.findRepo(owner.login, name)) throw new FieldError('UNPROCESSABLE', 'Name already exists on this account');
      const repo = c.world.addRepo(owner.login, name, {
        private: input.visibility !== 'PUBLIC',
        empty: true,
        defaultBranch: c.world.newRepoBranch,
        description: typeof input.description === 'string' ? input.description : null,
      });
      if (typeof input.hasIssuesEnabled === 'boolean') repo.hasIssues = input.hasIssuesEnabled;
      if (typeof input.hasWikiEnabled === 'boolean') repo.hasWiki = input.hasWikiEnabled;
      return { repository: repo, clientMutationId: input.clientMutationId ?? null };
    },
  },
};

export const schema: Schema<GqlCtx> = {
  types: {
    Query: queryFields,
    Mutation: mutationFields,
    Repository: repositoryFields,
    User: accountFields,
    Organization: accountFields,
    Ref: refFields,
    Commit: { oid: scalar('GitObjectID', (c: { oid: string }) => c.oid) },
    Release: releaseFields,
    ReleaseAsset: assetFields,
    RepositoryConnection: connectionFields('Repository'),
    RepositoryEdge: edgeFields('Repository'),
    ReleaseConnection: connectionFields('Release'),
    ReleaseEdge: edgeFields('Release'),
    ReleaseAssetConnection: connectionFields('ReleaseAsset'),
    ReleaseAssetEdge: edgeFields('ReleaseAsset'),
    PageInfo: {
      hasNextPage: scalar('Boolean', (p: Connection<unknown>['pageInfo']) => p.hasNextPage),
      hasPreviousPage: scalar('Boolean', (p: Connection<unknown>['pageInfo']) => p.hasPreviousPage),
      startCursor: scalar('String', (p: Connection<unknown>['pageInfo']) => p.startCursor),
      endCursor: scalar('String', (p: Connection<unknown>['pageInfo']) => p.endCursor),
    },
    CreateRepositoryPayload: {
      repository: { type: 'Repository', resolve: (p: { repository: Repo }) => p.repository },
      clientMutationId: scalar('String', (p: { clientMutationId: unknown }) => p.clientMutationId),
    },
  },
  abstract: {
    RepositoryOwner: { possible: ['User', 'Organization'], resolveType: (v) => (v as Account).type },
  },
};
