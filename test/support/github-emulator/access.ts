/**
 * Authentication and repository visibility, following GitHub's rules:
 * - a wrong or revoked token is refused outright (401 "Bad credentials") whatever the endpoint;
 * - no token at all is an anonymous caller: public reads work, private repositories look absent
 *   (404, GitHub never confirms they exist), and writes get 401 "Requires authentication".
 */
import { DOCS } from './hosts.js';
import { type Caller, type Ctx, notFound, sendError } from './http.js';
import type { Account, Repo, World } from './state.js';

/** `Authorization: token X` or `Bearer X` (gh sends the former). */
export function authenticate(header: string | undefined, world: World): Caller | 'bad-credentials' {
  if (header === undefined || header.trim() === '') return { kind: 'anonymous' };
  const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
  if (!m || m[1] !== world.token || world.tokenRevoked) return 'bad-credentials';
  return { kind: 'viewer', account: world.viewer };
}

export function requireViewer(ctx: Ctx): Account | undefined {
  if (ctx.caller.kind === 'viewer') return ctx.caller.account;
  sendError(ctx, 401, 'Requires authentication', DOCS);
  return undefined;
}

export function visibleRepo(ctx: Ctx, owner: string, name: string, docs = DOCS): Repo | undefined {
  const repo = ctx.world.findRepo(owner, name);
  if (!repo || (repo.private && ctx.caller.kind !== 'viewer')) {
    notFound(ctx, docs);
    return undefined;
  }
  return repo;
}

/** For writes: 404 if the caller cannot see the repository, else 401 if anonymous. */
export function writableRepo(ctx: Ctx, owner: string, name: string, docs = DOCS): Repo | undefined {
  const repo = visibleRepo(ctx, owner, name, docs);
  if (!repo) return undefined;
  return requireViewer(ctx) ? repo : undefined;
}
