// github-sync against a GitHub repository: real git over HTTPS to the GitHub emulator, credentials
// from the real `gh auth git-credential`, default branch and pull requests through the real gh.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError } from '../src/core/errors.js';
import { syncPull } from '../src/sync/pull.js';
import { syncPush } from '../src/sync/push.js';
import { readState } from '../src/sync/state.js';
import { syncStatus } from '../src/sync/status.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let emu: GithubEmulator;
let env: Record<string, string>;
let work: string;
let root: string;
const REPO = 'octo/agent-data';

beforeEach(async () => {
  emu = await startGithubEmulator();
  // auto-initialised (a README commit) on a default branch that is not main
  emu.createRepo(REPO, { defaultBranch: 'trunk' });
  env = emu.gitEnv();
  work = tempRoot('wb-sync-gh-');
  root = path.join(work, 'root');
  makeNotesDb(path.join(root, 'db', 'notes.db'), 20);
});
afterEach(async () => {
  await emu.close();
  rmrf(work);
});

/** git as a person would run it, with gh as the credential helper; async: the emulator runs in this process. */
async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await execa('git', ['-c', 'credential.helper=', '-c', 'credential.helper=!gh auth git-credential', ...args], { cwd, env, extendEnv: false, reject: false });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return String(r.stdout).trim();
}

function configure(mode: 'direct' | 'pr' | 'hybrid'): void {
  writeConfigFile(root, { sync: { github: { repo: REPO, mode } } });
}

const push = () => syncPush(loadConfig(root), { env });
const changeNote = (id: number, title: string) => {
  const db = new Database(path.join(root, 'db', 'notes.db'));
  db.prepare('UPDATE notes SET title = ? WHERE id = ?').run(title, id);
  db.close();
};

/** Another person edits the mirror on GitHub: clone, change a row's line, push. */
async function remoteEdit(): Promise<string> {
  const clone = path.join(work, `other-${Date.now()}`);
  await git(work, 'clone', '-q', emu.cloneUrl(REPO), clone);
  const file = path.join(clone, 'notes', 'notes.jsonl');
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines[9] = lines[9]!.replace(/"title":"[^"]*"/, '"title":"edited on GitHub"');
  fs.writeFileSync(file, lines.join('\n'));
  await git(clone, 'commit', '-q', '-am', 'edit on GitHub');
  await git(clone, 'push', '-q', 'origin', 'HEAD:trunk');
  return git(clone, 'rev-parse', 'HEAD');
}

describe('github-sync to a GitHub repository (emulator, real git over HTTPS, real gh)', () => {
  it('direct: reads the default branch from the API, pushes with credentials from gh auth git-credential, and a clone has the mirror', async () => {
    configure('direct');
    const pushed = await push();
    expect(pushed).toMatchObject({ status: 'pushed', branch: 'trunk', mode: 'direct' });
    expect(emu.repo(REPO)!.branches.trunk).toBe(pushed.commit);
    // the default branch came from the REST API, not from git
    expect(emu.requests.some((r) => r.method === 'GET' && r.path === `/repos/${REPO}`)).toBe(true);
    const clone = path.join(work, 'clone');
    await git(work, 'clone', '-q', emu.cloneUrl(REPO), clone);
    expect(fs.readFileSync(path.join(clone, 'notes', 'notes.jsonl'), 'utf8').split('\n').filter(Boolean)).toHaveLength(20);
    // the auto-init README of the repository was a file of the user's: replaced only by the mirror's own
    expect(fs.existsSync(path.join(clone, 'manifest.json'))).toBe(true);
    // nothing about the token was written next to the clone
    expect(fs.readFileSync(path.join(root, 'sync', 'repo', '.git', 'config'), 'utf8')).not.toContain(emu.ghEnv().GH_TOKEN);
  });

  it('hybrid: fast-forwards when the remote did not move; opens a pull request through gh when it did, and never overwrites the remote edit', async () => {
    configure('hybrid');
    expect((await push()).status).toBe('pushed');
    changeNote(2, 'fast-forward change');
    const ff = await push();
    expect(ff).toMatchObject({ status: 'pushed', files_changed: ['README.md', 'manifest.json', 'notes/notes.jsonl'] }); // manifest.json: the database's new content_sha256

    const edited = await remoteEdit();
    changeNote(3, 'changed on this machine');
    const viaPr = await push();
    expect(viaPr.status).toBe('pull_request');
    expect(viaPr.pull_request).toMatchObject({ number: 1, created: true });
    expect(viaPr.pull_request!.branch).toMatch(/^wb-backup\/sync-/);
    expect(viaPr.remote_changed_paths).toEqual(['notes/notes.jsonl']);
    const repo = emu.repo(REPO)!;
    expect(repo.branches.trunk).toBe(edited); // the remote edit stands
    expect(repo.pulls).toHaveLength(1);
    expect(repo.pulls[0]).toMatchObject({ state: 'open', base: { ref: 'trunk' }, head: { ref: viaPr.pull_request!.branch, sha: viaPr.commit } });
    expect(repo.pulls[0]!.body).toContain('notes/notes.jsonl');
    expect(readState(root).open_pull_request).toMatchObject({ number: 1 });
    // status fetches over HTTPS with gh's credentials: the remote's edit, and the pull request waiting
    const status = await syncStatus(loadConfig(root), { env });
    expect(status).toMatchObject({ branch: 'trunk', remote_head: edited, behind: 1, remote_changes: { 'notes/notes.jsonl': 1 }, open_pull_request: { number: 1 } }); // one row edited on the remote (issue 15: rows, not diff lines)
    expect(status.message).toMatch(/Pull request #1 is waiting for review/);
    // the pull request's commit is built on the last synced commit: it does not revert the remote's edit
    const prClone = path.join(work, 'pr');
    await git(work, 'clone', '-q', '-b', viaPr.pull_request!.branch, emu.cloneUrl(REPO), prClone);
    expect(await git(prClone, 'rev-parse', 'HEAD~1')).toBe(ff.commit);
    const prLines = fs.readFileSync(path.join(prClone, 'notes', 'notes.jsonl'), 'utf8');
    expect(prLines).toContain('"title":"changed on this machine"');

    // a later sync adds a commit to the same pull request (a fast-forward of its branch), no second one
    changeNote(4, 'one more');
    const again = await push();
    expect(again).toMatchObject({ status: 'pull_request', pull_request: { number: 1, created: false } });
    expect(emu.repo(REPO)!.pulls).toHaveLength(1);
    expect(emu.repo(REPO)!.pulls[0]!.head.sha).toBe(again.commit);
    await git(prClone, 'pull', '-q', '--ff-only');
    expect(await git(prClone, 'rev-parse', 'HEAD')).toBe(again.commit);
  });

  it('direct refuses the moved remote (no pull request); pull then brings the edit in and the next push fast-forwards', async () => {
    configure('direct');
    await push();
    await remoteEdit();
    changeNote(3, 'local');
    const refused = await push();
    expect(refused).toMatchObject({ status: 'remote_changed', remote_changed_paths: ['notes/notes.jsonl'] });
    expect(emu.repo(REPO)!.pulls).toHaveLength(0);
    const pulled = await syncPull(loadConfig(root), { env });
    expect(pulled.applied['notes.notes']).toEqual({ upserts: 1, deletes: 0 });
    const after = await push();
    expect(after.status).toBe('pushed');
    expect(emu.repo(REPO)!.branches.trunk).toBe(after.commit);
  });

  it('pr: proposes even a fast-forward as a pull request, then updates it; a dry run pushes nothing', async () => {
    configure('pr');
    const trunk = emu.repo(REPO)!.branches.trunk;
    const first = await push();
    expect(first).toMatchObject({ status: 'pull_request', pull_request: { number: 1, created: true } });
    expect(first.remote_changed_paths).toBeUndefined();
    expect(emu.repo(REPO)!.branches.trunk).toBe(trunk); // the branch itself is untouched
    changeNote(5, 'reviewed change');
    const before = emu.repo(REPO)!.branches;
    const dry = await syncPush(loadConfig(root), { env, dryRun: true });
    expect(dry.status).toBe('dry_run');
    expect(dry.message).toMatch(/update pull request #1/);
    expect(emu.repo(REPO)!.branches).toEqual(before);
    const update = await push();
    expect(update).toMatchObject({ status: 'pull_request', pull_request: { number: 1, created: false }, files_changed: ['README.md', 'manifest.json', 'notes/notes.jsonl'] });
    expect(emu.repo(REPO)!.pulls).toHaveLength(1);
    expect(emu.repo(REPO)!.pulls[0]!.head.sha).toBe(update.commit);
  });

  it('after the pull request is merged, the next sync has nothing to push and the merged head becomes the sync base', async () => {
    configure('pr');
    const opened = await push();
    expect(opened.status).toBe('pull_request');
    // the first sync went out as a pull request: there is no base to pull against yet, and the error says what to do
    const early = await syncPull(loadConfig(root), { env }).catch((e: unknown) => e);
    expect((early as Error).message).toMatch(/first sync is pull request #1 .*run github_sync_push/s);
    // a person merges it (fast-forward, as "rebase and merge" of a branch on top of trunk would)
    const clone = path.join(work, 'merger');
    await git(work, 'clone', '-q', emu.cloneUrl(REPO), clone);
    await git(clone, 'fetch', '-q', 'origin', opened.pull_request!.branch);
    await git(clone, 'push', '-q', 'origin', 'FETCH_HEAD:trunk');
    const settled = await push();
    expect(settled).toMatchObject({ status: 'no_changes', commit: opened.commit });
    expect(readState(root)).toMatchObject({ last_synced_sha: opened.commit, open_pull_request: null });
    changeNote(7, 'after the merge');
    expect((await push()).pull_request).toMatchObject({ number: 2, created: true });
  });

  it('hybrid: after the pull request is merged (a merge commit), pull takes in the remote edit and settles the base; the next push has nothing to do', async () => {
    configure('hybrid');
    await push();
    await remoteEdit(); // row 10 on GitHub
    changeNote(3, 'changed on this machine');
    const viaPr = await push();
    expect(viaPr.status).toBe('pull_request');
    const merger = path.join(work, 'merger');
    await git(work, 'clone', '-q', emu.cloneUrl(REPO), merger);
    await git(merger, 'fetch', '-q', 'origin', viaPr.pull_request!.branch);
    await git(merger, '-c', 'user.name=m', '-c', 'user.email=m@example.invalid', 'merge', '-q', '--no-edit', 'FETCH_HEAD');
    await git(merger, 'push', '-q', 'origin', 'HEAD:trunk');
    const mergedHead = await git(merger, 'rev-parse', 'HEAD');
    expect(emu.repo(REPO)!.pulls[0]).toMatchObject({ state: 'closed', merged: true });

    const pulled = await syncPull(loadConfig(root), { env });
    expect(pulled.status).toBe('applied');
    expect(pulled.applied['notes.notes']).toEqual({ upserts: 1, deletes: 0 });
    expect(readState(root)).toMatchObject({ last_synced_sha: mergedHead, open_pull_request: null });
    const db = new Database(path.join(root, 'db', 'notes.db'), { readonly: true });
    expect(db.prepare('SELECT title FROM notes WHERE id IN (3, 10) ORDER BY id').pluck().all()).toEqual(['changed on this machine', 'edited on GitHub']);
    db.close();
    expect((await push()).status).toBe('no_changes');
  });

  it('pr on an empty repository: there is nothing to review against, so the first sync creates the branch', async () => {
    emu.createRepo('octo/blank-data', { empty: true, defaultBranch: 'trunk' });
    writeConfigFile(root, { sync: { github: { repo: 'octo/blank-data', mode: 'pr' } } });
    const first = await push();
    expect(first).toMatchObject({ status: 'pushed', branch: 'trunk' });
    expect(emu.repo('octo/blank-data')!.branches.trunk).toBe(first.commit);
    expect(emu.repo('octo/blank-data')!.pulls).toHaveLength(0);
  });

  it('a revoked token: the push fails with what to do, and the remote is unchanged', async () => {
    configure('direct');
    await push();
    changeNote(6, 'not pushed');
    const head = emu.repo(REPO)!.branches.trunk;
    emu.revokeToken();
    const err = await push().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('sync_failed');
    expect((err as Error).message).toMatch(/gh auth login|gh auth refresh/);
    expect(emu.repo(REPO)!.branches.trunk).toBe(head);
  });
});
