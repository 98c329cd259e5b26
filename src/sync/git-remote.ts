import { WbError } from '../core/errors.js';
import { classifyGhFailure, runGh } from '../core/gh.js';
import { runGit } from '../core/git.js';
import type { GithubSyncConfig } from './config.js';

/** How to reach the sync remote: its URL, git's options (credentials), and the environment for git and gh. */
export interface SyncRemote {
  url: string;
  pre: string[];
  /** tests point gh and git at the GitHub emulator; default: this process's environment */
  env?: Record<string, string> | undefined;
}

/** git options for this remote: GitHub credentials come from gh at the moment git asks, never from disk. */
export function gitOptionsFor(sync: GithubSyncConfig, env?: Record<string, string>): SyncRemote {
  if (!sync.repo) return { url: sync.remote_url!, pre: [], env };
  const host = env?.GH_HOST ?? process.env.GH_HOST ?? 'github.com';
  // The helper list is reset first so no stored credential from another helper is used or written.
  return { url: sync.remote_url ?? `https://${host}/${sync.repo}.git`, pre: ['-c', 'credential.helper=', '-c', 'credential.helper=!gh auth git-credential'], env };
}

/** A failed git run as an error that says what failed and what to check. */
function gitFailure(stderr: string, what: string): WbError {
  const detail = stderr.split('\n').filter(Boolean).slice(0, 3).join(' ');
  const auth = /Authentication failed|could not read Username|403|401|Invalid username or token/i.test(stderr);
  return new WbError(
    'sync_failed',
    `git ${what} failed: ${detail}`,
    auth ? 'GitHub refused the credentials: sign in again with gh auth login --web (or gh auth refresh), then sync again.' : 'Check the sync remote (sync.github in wb-backup.yaml) and that it is reachable, then try again.',
  );
}

/** Run git for the sync; a failure becomes an error that says what failed and what to check. */
export async function gitOrThrow(cwd: string, remote: Pick<SyncRemote, 'pre' | 'env'>, args: string[], what: string): Promise<string> {
  const r = await runGit([...remote.pre, ...args], { cwd, ...(remote.env ? { env: remote.env } : {}) });
  if (!r.ok) throw gitFailure(r.stderr, what);
  return r.stdout;
}

/** The remote head of `branch` after fetching it, or null when the branch does not exist there. */
export async function fetchBranch(repo: string, remote: SyncRemote, branch: string): Promise<string | null> {
  const r = await runGit([...remote.pre, 'fetch', '-q', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`], { cwd: repo, ...(remote.env ? { env: remote.env } : {}) });
  if (!r.ok) {
    if (/couldn't find remote ref|could not find remote ref/i.test(r.stderr)) return null;
    throw gitFailure(r.stderr, 'fetch');
  }
  return (await gitOrThrow(repo, remote, ['rev-parse', `refs/remotes/origin/${branch}`], 'rev-parse')).trim();
}

/**
 * The branch to sync: configured, else the repository's default branch — from the GitHub API for a
 * GitHub repository, from the remote's HEAD otherwise. Never assumed to be main.
 */
export async function resolveBranchFor(cwd: string, remote: SyncRemote, sync: GithubSyncConfig): Promise<string> {
  if (sync.branch) return sync.branch;
  if (sync.repo) {
    const r = await runGh(['api', `repos/${sync.repo}`, '--jq', '.default_branch'], remote.env ? { env: remote.env } : {});
    const branch = r.stdout.trim();
    if (r.ok && branch) return branch;
    const failure = classifyGhFailure(r, sync.repo);
    throw new WbError('sync_failed', `Could not read the default branch of ${sync.repo}: ${failure.message}`, failure.hint);
  }
  const out = await gitOrThrow(cwd, remote, ['ls-remote', '--symref', remote.url, 'HEAD'], 'ls-remote');
  const m = /^ref: refs\/heads\/(\S+)\s+HEAD/m.exec(out);
  if (!m?.[1]) throw new WbError('config_invalid', 'The sync remote has no default branch yet (it is empty).', 'Set sync.github.branch in wb-backup.yaml, or push a first commit to it.');
  return m[1];
}
