/**
 * The git mirror as a SyncTransport (transport.ts): push, pull and status are push.ts, pull.ts and
 * status.ts unchanged; poll is one `git ls-remote` of the branch compared with the last synced and
 * the last pulled head.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../root/config.js';
import { syncConfig, type SyncMode } from './config.js';
import { gitOptionsFor, gitOrThrow } from './git-remote.js';
import { syncPull, type SyncPullResult } from './pull.js';
import { syncPush, type SyncPushResult } from './push.js';
import { readState, syncDir } from './state.js';
import { syncStatus, type SyncStatus } from './status.js';
import type { PollResult, SyncCallOptions, SyncTransport, TransportEntry } from './transport.js';

export type GitMirrorTransport = SyncTransport<SyncPushResult, SyncPullResult, SyncStatus> & {
  /** push with a mode other than sync.github.mode for this call */
  push(opts?: SyncCallOptions & { mode?: SyncMode }): Promise<SyncPushResult>;
};

/** "git:owner/name" for a GitHub repository, "git:<last path segment>" for any other remote (never the whole path). */
export function gitMirrorLabel(config: Config): string {
  const g = syncConfig(config);
  return `git:${g.repo ?? path.basename((g.remote_url ?? '').replace(/[/\\]+$/, ''))}`;
}

const envOf = (opts: SyncCallOptions) => (opts.env ? { env: opts.env } : {});

/** The git mirror of `config` (sync.github must be set: syncConfig throws config_invalid otherwise). */
export function gitMirrorTransport(config: Config): GitMirrorTransport {
  syncConfig(config);
  return {
    id: 'git',
    label: gitMirrorLabel(config),
    push: (opts: SyncCallOptions & { mode?: SyncMode } = {}) => syncPush(config, { ...envOf(opts), ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.mode ? { mode: opts.mode } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) }),
    pull: (opts = {}) => syncPull(config, { ...envOf(opts), ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) }),
    status: (opts = {}) => syncStatus(config, envOf(opts)),
    poll: (opts = {}) => pollGitMirror(config, opts),
  };
}

/**
 * One `git ls-remote` of the synced branch (the configured one, else the remote's HEAD, which is
 * the default branch push resolves), compared with the last synced head and the head the last pull
 * read. Exactly one request whatever the answer; none before the first sync.
 */
async function pollGitMirror(config: Config, opts: SyncCallOptions): Promise<PollResult> {
  const sync = syncConfig(config);
  const state = readState(config.root);
  if (!state.last_synced_sha) return { changed: false, requests: 0, detail: 'never synced: nothing to compare with yet (run github_sync_push)' };
  const remote = gitOptionsFor(sync, opts.env);
  const cwd = fs.existsSync(syncDir(config.root)) ? syncDir(config.root) : config.root;
  const args = sync.branch ? ['ls-remote', remote.url, `refs/heads/${sync.branch}`] : ['ls-remote', '--symref', remote.url, 'HEAD'];
  const out = await gitOrThrow(cwd, remote, args, 'ls-remote');
  const branch = sync.branch ?? /^ref: refs\/heads\/(\S+)\s+HEAD$/m.exec(out)?.[1] ?? null;
  const head = (sync.branch ? new RegExp(`^([0-9a-f]{40,64})\\trefs/heads/${escapeRe(sync.branch)}$`, 'm') : /^([0-9a-f]{40,64})\tHEAD$/m).exec(out)?.[1] ?? null;
  if (!head) return { changed: true, requests: 1, detail: `the branch ${branch ?? '(the default branch)'} is not on the remote any more` };
  const seen = head === state.last_synced_sha || head === state.last_pulled_sha;
  return {
    changed: !seen,
    requests: 1,
    detail: seen ? `${branch ?? 'the branch'} is still at ${head.slice(0, 12)}` : `${branch ?? 'the branch'} moved to ${head.slice(0, 12)} (last synced ${state.last_synced_sha.slice(0, 12)})`,
  };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The registry entry (transports.ts): configured by sync.github. */
export const gitMirrorEntry: TransportEntry = {
  id: 'git',
  title: 'git mirror',
  configured: (config) => Boolean(config.sync?.github),
  create: gitMirrorTransport,
};
