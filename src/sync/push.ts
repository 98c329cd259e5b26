import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../config.js';
import { WbError } from '../errors.js';
import { runGit } from '../git.js';
import { withRootLock } from '../lock.js';
import { logger } from '../log.js';
import type { GithubSyncConfig } from './config.js';
import { materialize } from './materialize.js';

export const SyncPushResultSchema = z.object({
  status: z.enum(['pushed', 'no_changes', 'remote_changed', 'dry_run']),
  branch: z.string(),
  commit: z.string().nullable().describe('the commit pushed (or the remote head when nothing was pushed)'),
  files_changed: z.array(z.string()).describe('paths added, changed or deleted by this sync'),
  remote_changed_paths: z.array(z.string()).optional().describe('remote_changed: paths changed on the remote since the last sync'),
  rows: z.record(z.string(), z.number()).describe('"db.table" -> rows mirrored'),
  skipped: z.array(z.object({ path: z.string(), reason: z.string() })),
  message: z.string(),
});
export type SyncPushResult = z.infer<typeof SyncPushResultSchema>;

export interface SyncState {
  last_synced_sha: string | null;
  last_remote_sha: string | null;
  last_sync_at: string | null;
}

export function syncDir(root: string): string {
  return path.join(root, 'sync');
}

export function readState(root: string): SyncState {
  try {
    return JSON.parse(fs.readFileSync(path.join(syncDir(root), 'state.json'), 'utf8')) as SyncState;
  } catch {
    return { last_synced_sha: null, last_remote_sha: null, last_sync_at: null };
  }
}

export function writeState(root: string, state: SyncState): void {
  const file = path.join(syncDir(root), 'state.json');
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

export function logOperation(root: string, entry: Record<string, unknown>): void {
  fs.appendFileSync(path.join(syncDir(root), 'log.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
  logger().info(entry, 'github-sync');
}

export function syncConfig(config: Config): GithubSyncConfig {
  const sync = config.sync?.github;
  if (!sync) {
    throw new WbError('config_invalid', 'github-sync is not configured.', 'Add sync: { github: { repo: owner/name } } (or remote_url) to wb-backup.yaml; see docs/github-sync.md.');
  }
  return sync;
}

/** git options for this remote: GitHub credentials come from gh at the moment git asks, never from disk. */
export function gitOptionsFor(sync: GithubSyncConfig): { url: string; pre: string[] } {
  if (sync.repo) {
    const host = process.env.GH_HOST ?? 'github.com';
    return { url: `https://${host}/${sync.repo}.git`, pre: ['-c', 'credential.helper=', '-c', 'credential.helper=!gh auth git-credential'] };
  }
  return { url: sync.remote_url!, pre: [] };
}

const IDENTITY = ['-c', 'user.name=wb-backup', '-c', 'user.email=wb-backup@users.noreply.localhost'];

async function git(cwd: string, pre: string[], args: string[], what: string): Promise<string> {
  const r = await runGit([...pre, ...args], { cwd });
  if (!r.ok) throw new WbError('snapshot_failed', `git ${what} failed: ${r.stderr.split('\n').slice(0, 3).join(' ')}`, 'Check the sync remote and your credentials (gh auth status), then try again.');
  return r.stdout;
}

/** The branch to sync: configured, else the remote's default (read from the remote; never assumed). */
export async function resolveBranchFor(cwd: string, pre: string[], url: string, sync: GithubSyncConfig): Promise<string> {
  if (sync.branch) return sync.branch;
  const out = await git(cwd, pre, ['ls-remote', '--symref', url, 'HEAD'], 'ls-remote');
  const m = /^ref: refs\/heads\/(\S+)\s+HEAD/m.exec(out);
  if (!m?.[1]) throw new WbError('config_invalid', 'The sync remote has no default branch yet (it is empty).', 'Set sync.github.branch in wb-backup.yaml, or push a first commit to it.');
  return m[1];
}

function listFiles(dir: string, prefix = ''): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

/**
 * Make the mirror's part of the clone equal to `fresh`: changed files are rewritten, unchanged ones
 * left as they are (so git does not re-read them), and what the mirror owned but no longer
 * produces (dropped tables, removed databases) is deleted. Other files in the repository are kept.
 */
function applyMirror(repo: string, fresh: string, databases: readonly string[]): void {
  let previous: string[] = [];
  try {
    previous = Object.keys((JSON.parse(fs.readFileSync(path.join(repo, 'manifest.json'), 'utf8')) as { databases?: Record<string, unknown> }).databases ?? {});
  } catch {
    /* no earlier mirror */
  }
  const wanted = new Set(listFiles(fresh));
  for (const dir of new Set([...previous, ...databases])) {
    for (const f of listFiles(path.join(repo, dir), `${dir}/`)) if (!wanted.has(f)) fs.rmSync(path.join(repo, f));
    if (fs.existsSync(path.join(repo, dir)) && !listFiles(path.join(repo, dir)).length) fs.rmSync(path.join(repo, dir), { recursive: true });
  }
  for (const f of wanted) {
    const src = path.join(fresh, f);
    const dest = path.join(repo, f);
    const same = fs.existsSync(dest) && fs.statSync(dest).size === fs.statSync(src).size && fs.readFileSync(dest).equals(fs.readFileSync(src));
    if (!same) {
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(src, dest);
    }
  }
}

/**
 * github_sync_push: materialize the databases into the sync clone and make one commit with every
 * change (deletions and orphans included), then push fast-forward only. When the remote moved since
 * the last sync, nothing is overwritten: the changed paths are reported and the push stops.
 */
export async function syncPush(config: Config, opts: { dryRun?: boolean } = {}): Promise<SyncPushResult> {
  const sync = syncConfig(config);
  return withRootLock(config.root, 'github-sync push', config.backup.lock_wait_ms, async () => {
    const base = syncDir(config.root);
    const repo = path.join(base, 'repo');
    fs.mkdirSync(base, { recursive: true });
    const { url, pre } = gitOptionsFor(sync);
    const branch = await resolveBranchFor(base, pre, url, sync);
    if (!fs.existsSync(path.join(repo, '.git'))) {
      fs.rmSync(repo, { recursive: true, force: true });
      await git(base, pre, ['init', '-q', repo], 'init');
      await git(repo, pre, ['remote', 'add', 'origin', url], 'remote add');
    }
    await git(repo, pre, ['remote', 'set-url', 'origin', url], 'remote set-url');
    const fetched = await runGit([...pre, 'fetch', '-q', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`], { cwd: repo });
    const remoteHead = fetched.ok ? (await git(repo, pre, ['rev-parse', `refs/remotes/origin/${branch}`], 'rev-parse')).trim() : null;
    const state = readState(config.root);

    if (state.last_synced_sha && remoteHead && remoteHead !== state.last_synced_sha) {
      const changed = (await git(repo, pre, ['diff', '--name-only', state.last_synced_sha, remoteHead], 'diff')).split('\n').filter(Boolean);
      logOperation(config.root, { op: 'push', status: 'remote_changed', remote: remoteHead, paths: changed.length });
      return {
        status: 'remote_changed',
        branch,
        commit: remoteHead,
        files_changed: [],
        remote_changed_paths: changed,
        rows: {},
        skipped: [],
        message: `The remote branch ${branch} changed since the last sync (${changed.length} path(s)); nothing was overwritten. Pull those changes first (github_sync_pull), then push again.`,
      };
    }

    // Start from the remote head (or an empty branch) with a clean tree: what is not materialized now is deleted.
    const current = (await runGit(['rev-parse', '-q', '--verify', 'HEAD'], { cwd: repo })).stdout.trim();
    const onBranch = (await runGit(['symbolic-ref', '-q', '--short', 'HEAD'], { cwd: repo })).stdout.trim() === branch;
    if (remoteHead && !(onBranch && current === remoteHead)) await git(repo, pre, ['checkout', '-q', '-B', branch, remoteHead], 'checkout');
    else if (!remoteHead) await git(repo, pre, ['checkout', '-q', '--orphan', branch], 'checkout --orphan');
    await runGit(['reset', '-q', '--hard'], { cwd: repo });
    await runGit(['clean', '-q', '-fdx'], { cwd: repo });
    const fresh = path.join(base, 'fresh');
    fs.rmSync(fresh, { recursive: true, force: true });
    const manifest = materialize(fresh, config.databases, { exclude: sync.exclude_tables, maxFileBytes: sync.max_file_bytes });
    applyMirror(repo, fresh, config.databases.map((d) => d.name));
    fs.rmSync(fresh, { recursive: true, force: true });
    const rows: Record<string, number> = {};
    for (const [db, entry] of Object.entries(manifest.databases)) for (const [t, info] of Object.entries(entry.tables)) rows[`${db}.${t}`] = info.rows;

    await git(repo, pre, ['add', '-A'], 'add');
    let changed = (await git(repo, pre, ['diff', '--cached', '--name-only'], 'diff')).split('\n').filter(Boolean);
    if (changed.length && changed.some((p) => p !== 'README.md')) {
      // The README says when the data last changed; it is rewritten only with real changes, so a no-op sync makes no commit.
      fs.writeFileSync(path.join(repo, 'README.md'), readme(Object.keys(manifest.databases), new Date()));
      await git(repo, pre, ['add', 'README.md'], 'add');
      if (!changed.includes('README.md')) changed = [...changed, 'README.md'].sort();
    }
    if (!changed.length) {
      writeState(config.root, { last_synced_sha: remoteHead, last_remote_sha: remoteHead, last_sync_at: new Date().toISOString() });
      logOperation(config.root, { op: 'push', status: 'no_changes', remote: remoteHead });
      return { status: 'no_changes', branch, commit: remoteHead, files_changed: [], rows, skipped: manifest.skipped, message: 'The mirror already matches the databases; no commit was made.' };
    }
    const stagedBytes = changed.reduce((n, p) => n + (fs.existsSync(path.join(repo, p)) ? fs.statSync(path.join(repo, p)).size : 0), 0);
    if (stagedBytes > sync.max_push_bytes) {
      throw new WbError('invalid_input', `This sync would push ${stagedBytes} bytes, over the per-push cap of ${sync.max_push_bytes}.`, 'Exclude large tables (sync.github.exclude_tables) or raise sync.github.max_push_bytes.');
    }
    if (opts.dryRun) {
      await runGit(['reset', '-q'], { cwd: repo });
      return { status: 'dry_run', branch, commit: remoteHead, files_changed: changed, rows, skipped: manifest.skipped, message: `A push would commit ${changed.length} changed file(s); nothing was pushed.` };
    }
    await git(repo, pre, [...IDENTITY, 'commit', '-q', '-m', `wb-backup sync: ${changed.length} file(s)`], 'commit');
    const commit = (await git(repo, pre, ['rev-parse', 'HEAD'], 'rev-parse')).trim();
    // No --force anywhere: the remote refuses anything but a fast-forward.
    const pushed = await runGit([...pre, 'push', '-q', 'origin', `HEAD:refs/heads/${branch}`], { cwd: repo });
    if (!pushed.ok) {
      logOperation(config.root, { op: 'push', status: 'rejected', stderr: pushed.stderr.slice(0, 200) });
      throw new WbError('snapshot_failed', `The push was refused: ${pushed.stderr.split('\n')[0]}`, 'The remote probably moved meanwhile: run the sync again.');
    }
    writeState(config.root, { last_synced_sha: commit, last_remote_sha: commit, last_sync_at: new Date().toISOString() });
    logOperation(config.root, { op: 'push', status: 'pushed', commit, files: changed.length });
    return { status: 'pushed', branch, commit, files_changed: changed, rows, skipped: manifest.skipped, message: `Pushed ${changed.length} changed file(s) to ${branch} in one commit.` };
  });
}

function readme(databases: string[], at: Date): string {
  return [
    '# Data mirror (wb-backup github-sync)',
    '',
    `Readable copy of the databases ${databases.join(', ')}: \`<db>/schema.sql\` and one JSON line per row in \`<db>/<table>.jsonl\`, sorted by primary key.`,
    '',
    `Last changed by a sync: ${at.toISOString()}.`,
    '',
    'Rebuild the databases on a new machine: `git clone` this repository, then `wb-backup sync import <clone-dir>`.',
    '',
  ].join('\n');
}
