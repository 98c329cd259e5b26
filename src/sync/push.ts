import fs from 'node:fs';
import path from 'node:path';
import { rootLayout } from '../root/paths.js';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { WbError, describeError } from '../core/errors.js';
import { withRootLock } from '../root/lock.js';
import { SYNC_MODES, syncConfig, type GithubSyncConfig, type SyncMode } from './config.js';
import { fetchBranch, gitOptionsFor, gitOrThrow, resolveBranchFor, type SyncRemote } from './git-remote.js';
import { materialize } from './materialize.js';
import { replacedManifestAt, type MirrorManifest } from './mirror-manifest.js';
import { commitStaged, stageMirrorOn, unstage, type StagedMirror } from './mirror-commit.js';
import { findOpenSyncPullRequest, openPullRequest, PR_BRANCH_PREFIX } from './pull-request.js';
import { routePush } from './push-route.js';
import { logOperation, readState, syncDir, writeState, type SyncState } from './state.js';

export const SyncPushResultSchema = z.object({
  status: z.enum(['pushed', 'pull_request', 'no_changes', 'remote_changed', 'dry_run']),
  mode: z.enum(SYNC_MODES),
  branch: z.string(),
  commit: z.string().nullable().describe('the commit pushed (or the remote head when nothing was pushed)'),
  files_changed: z.array(z.string()).describe('paths added, changed or deleted by this sync'),
  remote_changed_paths: z.array(z.string()).optional().describe('paths changed on the remote since the last sync'),
  pull_request: z
    .object({ number: z.number(), url: z.string(), branch: z.string(), created: z.boolean() })
    .optional()
    .describe('pr/hybrid: the pull request carrying this sync (created now, or an open one updated)'),
  rows: z.record(z.string(), z.number()).describe('"db.table" -> rows mirrored'),
  skipped: z.array(z.object({ path: z.string(), reason: z.string() })),
  warnings: z.array(z.object({ table: z.string(), reason: z.string() })).describe('sync.github.documents mappings that could not be used (those tables stay JSONL)'),
  message: z.string(),
});
export type SyncPushResult = z.infer<typeof SyncPushResultSchema>;

export interface SyncPushOptions {
  dryRun?: boolean;
  /** overrides sync.github.mode for this push */
  mode?: SyncMode;
  /** environment for git and gh (tests point it at the GitHub emulator) */
  env?: Record<string, string>;
}

/** The sync clone under <root>/sync/repo, created on first use and pointed at the configured remote. */
async function ensureClone(root: string, remote: SyncRemote): Promise<string> {
  const base = syncDir(root);
  const repo = path.join(base, 'repo');
  fs.mkdirSync(base, { recursive: true });
  if (!fs.existsSync(path.join(repo, '.git'))) {
    fs.rmSync(repo, { recursive: true, force: true });
    await gitOrThrow(base, remote, ['init', '-q', repo], 'init');
    await gitOrThrow(repo, remote, ['remote', 'add', 'origin', remote.url], 'remote add');
  }
  await gitOrThrow(repo, remote, ['remote', 'set-url', 'origin', remote.url], 'remote set-url');
  return repo;
}

function rowsOf(manifest: MirrorManifest): Record<string, number> {
  const rows: Record<string, number> = {};
  for (const [db, entry] of Object.entries(manifest.databases)) for (const [t, info] of Object.entries(entry.tables)) rows[`${db}.${t}`] = info.rows;
  return rows;
}

/** One push, as its steps share it: where it goes, what the last sync left, and the fresh materialization. */
interface PushRun {
  config: Config;
  sync: GithubSyncConfig;
  mode: SyncMode;
  remote: SyncRemote;
  repo: string;
  branch: string;
  remoteHead: string | null;
  state: SyncState;
  /** the fresh materialization (removed when the push ends) */
  fresh: string;
  databases: string[];
  readmeText: () => string;
  dryRun: boolean;
  common: Common;
}

/**
 * github_sync_push: materialize the databases and publish them as one commit (deletions and
 * orphans included). `direct` fast-forwards the branch and refuses when the remote moved since the
 * last sync; `pr` always goes through a pull request; `hybrid` fast-forwards when it can and opens a
 * pull request otherwise. Nothing on the remote is ever overwritten: no force push, ever.
 */
export async function syncPush(config: Config, opts: SyncPushOptions = {}): Promise<SyncPushResult> {
  const sync = syncConfig(config);
  const mode = opts.mode ?? sync.mode;
  if (mode !== 'direct' && !sync.repo) {
    throw new WbError('config_invalid', `Mode ${mode} opens pull requests on GitHub, but sync.github has no repo.`, 'Set sync.github.repo (owner/name), or use mode direct.');
  }
  return withRootLock(config.root, 'github-sync push', config.backup.lock_wait_ms, async () => {
    const run = await preparePush(config, sync, mode, opts);
    try {
      // Whatever the mode: when the remote already holds exactly this mirror there is nothing to do,
      // and the remote head becomes the sync base (a merged pull request lands here).
      const onHead = await stageMirrorOn(run.repo, run.remote, run.remoteHead, run.branch, run.fresh, run.databases, run.readmeText, sync.max_push_bytes);
      if (!onHead.changed.length) return recordNoChanges(run, onHead);
      const moved = Boolean(run.state.last_synced_sha && run.remoteHead && run.remoteHead !== run.state.last_synced_sha);
      // An empty remote branch has nothing to review a change against: the first sync creates it.
      const route = run.remoteHead ? routePush(mode, moved) : ({ kind: 'direct' } as const);
      if (route.kind === 'refuse_remote_changed') return await refuseRemoteChanged(run);
      if (route.kind === 'direct') {
        const direct = await pushDirect(run, onHead);
        if (direct) return direct;
        // hybrid: the remote moved between fetch and push; propose the same change as a pull request.
      }
      const parent = route.kind === 'pull_request' && route.parent === 'last_synced' ? run.state.last_synced_sha : run.remoteHead;
      return await pushThroughPullRequest(run, parent);
    } finally {
      fs.rmSync(run.fresh, { recursive: true, force: true });
    }
  });
}

/** The clone fetched, the remote head, and the databases materialized into <root>/sync/fresh. */
async function preparePush(config: Config, sync: GithubSyncConfig, mode: SyncMode, opts: SyncPushOptions): Promise<PushRun> {
  const remote = gitOptionsFor(sync, opts.env);
  const repo = await ensureClone(config.root, remote);
  const branch = await resolveBranchFor(repo, remote, sync);
  const remoteHead = await fetchBranch(repo, remote, branch);
  const state = readState(config.root);
  const fresh = path.join(syncDir(config.root), 'fresh');
  fs.rmSync(fresh, { recursive: true, force: true });
  const manifest = materialize(fresh, config.databases, { dbDir: rootLayout(config.root).dbDir, exclude: sync.exclude_tables, maxFileBytes: sync.max_file_bytes, documents: sync.documents, now: new Date(), previous: remoteHead ? await replacedManifestAt(repo, remoteHead) : null });
  // Files under db/ that discovery could not use (a dangling or looping link) are reported too.
  const notDiscovered = (config.skipped ?? []).map((s) => ({ path: `db: ${s.name}`, reason: s.reason }));
  return {
    config,
    sync,
    mode,
    remote,
    repo,
    branch,
    remoteHead,
    state,
    fresh,
    databases: config.databases.map((d) => d.name),
    readmeText: () => readme(Object.keys(manifest.databases), new Date()),
    dryRun: Boolean(opts.dryRun),
    common: { mode, branch, rows: rowsOf(manifest), skipped: [...notDiscovered, ...manifest.skipped], warnings: manifest.warnings ?? [] },
  };
}

/** The remote already holds this mirror: no commit; the remote head becomes the sync base when it equals the databases. */
function recordNoChanges(run: PushRun, onHead: StagedMirror): SyncPushResult {
  // Only a remote equal to the databases may become the base: with tables held back by the
  // cap it is not, and a base that skipped a remote edit would let a later push overwrite it.
  const exact = !onHead.deferred.length;
  if (!run.dryRun) {
    if (exact) writeState(run.config.root, { last_synced_sha: run.remoteHead, last_remote_sha: run.remoteHead, last_sync_at: new Date().toISOString(), open_pull_request: null });
    logOperation(run.config.root, { op: 'push', mode: run.mode, status: 'no_changes', remote: run.remoteHead, deferred: onHead.deferred.length });
  }
  return {
    ...withDeferred(run.common, onHead),
    status: 'no_changes',
    commit: run.remoteHead,
    files_changed: [],
    message: exact ? 'The remote already matches the databases; no commit was made.' : `Nothing could be pushed within the per-push cap; no commit was made.${deferredNote(onHead)}`,
  };
}

/** direct mode and the remote moved since the last sync: nothing is pushed; the result lists what changed there. */
async function refuseRemoteChanged(run: PushRun): Promise<SyncPushResult> {
  await unstage(run.repo);
  const changed = (await gitOrThrow(run.repo, run.remote, ['diff', '--name-only', run.state.last_synced_sha!, run.remoteHead!], 'diff')).split('\n').filter(Boolean);
  logOperation(run.config.root, { op: 'push', mode: run.mode, status: 'remote_changed', remote: run.remoteHead, paths: changed.length });
  return {
    ...run.common,
    status: 'remote_changed',
    commit: run.remoteHead,
    files_changed: [],
    remote_changed_paths: changed,
    message: `The remote branch ${run.branch} changed since the last sync (${changed.length} path(s)); nothing was overwritten. Pull those changes first (github_sync_pull), then push again, or push with mode hybrid to propose this sync as a pull request.`,
  };
}

/**
 * Commit what is staged on the branch and fast-forward the remote (a dry run stops before). Null
 * when hybrid's push was refused (the remote moved meanwhile): the caller proposes a pull request.
 */
async function pushDirect(run: PushRun, onHead: StagedMirror): Promise<SyncPushResult | null> {
  const { branch } = run;
  if (run.dryRun) {
    await unstage(run.repo);
    return { ...withDeferred(run.common, onHead), status: 'dry_run', commit: run.remoteHead, files_changed: onHead.changed, message: `A push would commit ${onHead.changed.length} changed file(s) to ${branch}; nothing was pushed.${deferredNote(onHead)}` };
  }
  const commit = await commitStaged(run.repo, run.remote, `wb-backup sync: ${onHead.changed.length} file(s)`);
  const pushed = await pushBranch(run.repo, run.remote, branch);
  if (pushed.ok) {
    writeState(run.config.root, { ...run.state, last_synced_sha: commit, last_remote_sha: commit, last_sync_at: new Date().toISOString(), conflicts: null });
    logOperation(run.config.root, { op: 'push', mode: run.mode, status: 'pushed', commit, files: onHead.changed.length });
    return { ...withDeferred(run.common, onHead), status: 'pushed', commit, files_changed: onHead.changed, message: `Pushed ${onHead.changed.length} changed file(s) to ${branch} in one commit.${deferredNote(onHead)}` };
  }
  logOperation(run.config.root, { op: 'push', mode: run.mode, status: 'rejected', stderr: pushed.stderr.slice(0, 200) });
  if (run.mode !== 'hybrid') {
    throw new WbError('sync_failed', `The push to ${branch} was refused: ${pushed.stderr.split('\n')[0]}`, 'The remote probably moved meanwhile: run the sync again (it will then report what changed).');
  }
  return null;
}

type Common = Pick<SyncPushResult, 'mode' | 'branch' | 'rows' | 'skipped' | 'warnings'>;

/** The result's skipped list includes the tables the per-push cap held back in this commit. */
function withDeferred(common: Common, staged: StagedMirror): Common {
  return staged.deferred.length ? { ...common, skipped: [...common.skipped, ...staged.deferred] } : common;
}

function deferredNote(staged: StagedMirror): string {
  return staged.deferred.length ? ` ${staged.deferred.length} table(s) wait for a later sync because of the per-push cap: ${staged.deferred.map((d) => d.path).join(', ')} (see skipped).` : '';
}

async function pushBranch(repo: string, remote: SyncRemote, branch: string): Promise<{ ok: boolean; stderr: string }> {
  try {
    // No --force anywhere: the remote refuses anything but a fast-forward.
    await gitOrThrow(repo, remote, ['push', '-q', 'origin', `HEAD:refs/heads/${branch}`], 'push');
    return { ok: true, stderr: '' };
  } catch (err) {
    return { ok: false, stderr: describeError(err) };
  }
}

/**
 * Carry the sync on a branch of its own and propose it as a pull request into `branch`. An open
 * pull request from an earlier sync is updated (a new commit on its branch) rather than a second
 * one opened. The sync base does not move: the merged result arrives with the next pull.
 */
async function pushThroughPullRequest(run: PushRun, parent: string | null): Promise<SyncPushResult> {
  const a = { ...run, parent };
  const ghRepo = a.sync.repo!;
  const open = await findOpenSyncPullRequest(ghRepo, a.branch, a.remote.env);
  const prHead = open ? await fetchBranch(a.repo, a.remote, open.branch) : null;
  const prBranch = open && prHead ? open.branch : `${PR_BRANCH_PREFIX}${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const staged = await stageMirrorOn(a.repo, a.remote, prHead ?? a.parent, prBranch, a.fresh, a.databases, a.readmeText, a.sync.max_push_bytes);
  const remoteChanged = a.state.last_synced_sha && a.remoteHead && a.remoteHead !== a.state.last_synced_sha
    ? (await gitOrThrow(a.repo, a.remote, ['diff', '--name-only', a.state.last_synced_sha, a.remoteHead], 'diff')).split('\n').filter(Boolean)
    : undefined;
  const extra = remoteChanged ? { remote_changed_paths: remoteChanged } : {};
  if (!staged.changed.length && open) {
    await unstage(a.repo);
    return { ...withDeferred(a.common, staged), ...extra, status: 'pull_request', commit: prHead, files_changed: [], pull_request: { ...open, created: false }, message: `Pull request #${open.number} already carries these changes: ${open.url}${deferredNote(staged)}` };
  }
  if (a.dryRun) {
    await unstage(a.repo);
    return {
      ...withDeferred(a.common, staged),
      ...extra,
      status: 'dry_run',
      commit: a.remoteHead,
      files_changed: staged.changed,
      message: `A push would commit ${staged.changed.length} changed file(s) to ${prBranch} and ${open ? `update pull request #${open.number}` : `open a pull request into ${a.branch}`}; nothing was pushed.${deferredNote(staged)}`,
    };
  }
  const commit = await commitStaged(a.repo, a.remote, `wb-backup sync: ${staged.changed.length} file(s)`);
  const pushed = await pushBranch(a.repo, a.remote, prBranch);
  if (!pushed.ok) throw new WbError('sync_failed', `Pushing the sync branch ${prBranch} was refused: ${pushed.stderr.split('\n')[0]}`, 'Run the sync again.');
  const pr = open ?? (await openPullRequest(ghRepo, { head: prBranch, base: a.branch, title: 'wb-backup sync: data changed on this machine', body: prBody(a.branch, staged.changed, remoteChanged) }, a.remote.env));
  writeState(a.config.root, { ...a.state, last_remote_sha: a.remoteHead, last_sync_at: new Date().toISOString(), open_pull_request: pr });
  logOperation(a.config.root, { op: 'push', mode: a.common.mode, status: 'pull_request', commit, pull_request: pr.url, created: !open, files: staged.changed.length });
  return {
    ...withDeferred(a.common, staged),
    ...extra,
    status: 'pull_request',
    commit,
    files_changed: staged.changed,
    pull_request: { ...pr, created: !open },
    message: `${open ? `Updated pull request #${pr.number}` : `Opened pull request #${pr.number}`} with ${staged.changed.length} changed file(s): ${pr.url}. Nothing on ${a.branch} was overwritten; after it is merged, run github_sync_pull.${deferredNote(staged)}`,
  };
}

function prBody(branch: string, changed: string[], remoteChanged: string[] | undefined): string {
  const list = (paths: string[]) => paths.slice(0, 50).map((p) => `- \`${p}\``).join('\n') + (paths.length > 50 ? `\n- … and ${paths.length - 50} more` : '');
  return [
    `The databases on this machine changed since the last sync. This pull request carries them into \`${branch}\` without overwriting anything there.`,
    '',
    `Files changed by this sync:\n${list(changed)}`,
    ...(remoteChanged?.length ? ['', `Changed on \`${branch}\` since the last sync (review these for conflicts):\n${list(remoteChanged)}`] : []),
    '',
    'After merging, run `wb-backup sync pull` (github_sync_pull) on the machine so the databases take in the merged result.',
  ].join('\n');
}

function readme(databases: string[], at: Date): string {
  return [
    '# Data mirror (wb-backup github-sync)',
    '',
    `Readable copy of the databases ${databases.join(', ')}: \`<db>/schema.sql\` and one JSON line per row in \`<db>/<table>.jsonl\`, sorted by primary key (or one Markdown file per row for tables mapped to documents).`,
    '',
    `Last changed by a sync: ${at.toISOString()}.`,
    '',
    'Rebuild the databases on a new machine: `git clone` this repository, then `wb-backup sync import <clone-dir>`.',
    '',
  ].join('\n');
}
