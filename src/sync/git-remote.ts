import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

/** The branch a first push to an empty remote creates when the remote names none of its own. */
export const FIRST_PUSH_BRANCH = 'main';

/**
 * The branch an empty remote (no commits, so no HEAD to read) should get: the name its unborn HEAD
 * points at when the server says (git 2.31+ tells a clone), else FIRST_PUSH_BRANCH. Learnt from a
 * throw-away bare clone of the empty remote; a local init default never leaks in (a sentinel is set).
 */
export async function emptyRemoteBranch(remote: SyncRemote): Promise<string> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-sync-head-'));
  const sentinel = 'wb-backup-no-remote-head';
  try {
    const clone = path.join(tmp, 'probe.git');
    const r = await runGit([...remote.pre, '-c', `init.defaultBranch=${sentinel}`, 'clone', '-q', '--bare', remote.url, clone], { cwd: tmp, ...(remote.env ? { env: remote.env } : {}) });
    if (!r.ok) return FIRST_PUSH_BRANCH;
    const head = await runGit(['symbolic-ref', '--short', 'HEAD'], { cwd: clone });
    const name = head.stdout.trim();
    return head.ok && name && name !== sentinel ? name : FIRST_PUSH_BRANCH;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The branch to sync: configured, else the repository's default branch — from the GitHub API for a
 * GitHub repository, from the remote's HEAD otherwise. An empty remote (no commits yet) gets the
 * branch its unborn HEAD names, else main: the first push creates it, and its HEAD then resolves.
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
  if (m?.[1]) return m[1];
  // No HEAD branch: empty, unless it has branches and only HEAD dangles (then a guess could fork it).
  const heads = await gitOrThrow(cwd, remote, ['ls-remote', '--heads', remote.url], 'ls-remote');
  if (heads.trim()) throw new WbError('config_invalid', 'The sync remote has branches but no default branch (its HEAD points nowhere).', 'Set sync.github.branch in wb-backup.yaml to the branch to sync.');
  return emptyRemoteBranch(remote);
}
