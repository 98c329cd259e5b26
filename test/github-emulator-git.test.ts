/**
 * The GitHub emulator's git side and pull requests, driven by the REAL git and gh binaries: git
 * speaks https to github.localhost through the emulator (CONNECT + TLS), gets its credentials from
 * the real `gh auth git-credential`, and the emulator serves it with the real `git http-backend`
 * over real bare repositories. See docs/testing-github-emulator.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type GithubEmulator, startGithubEmulator } from './support/github-emulator/index.js';
import { rmrf, tempRoot } from './support/fixtures.js';

const GH = '/usr/bin/gh';
const hasTools = fs.existsSync(GH) && ['/usr/bin/git', '/usr/bin/openssl'].every((f) => fs.existsSync(f));

/** How wb-backup hands git its credentials: only gh, whatever the user configured. */
const HELPER = ['-c', 'credential.helper=', '-c', 'credential.helper=!gh auth git-credential'];

let emu: GithubEmulator;
let dir: string;

beforeEach(async () => {
  emu = await startGithubEmulator();
  dir = tempRoot('gh-emu-git-test-');
});
afterEach(async () => {
  await emu.close();
  rmrf(dir);
});

interface Result {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs git (never through a shell) in `dir`/`cwd` with the emulator's git environment only. */
async function git(args: string[], opts: { cwd?: string; env?: Record<string, string>; helper?: boolean } = {}): Promise<Result> {
  const r = await execa('git', [...(opts.helper === false ? [] : HELPER), ...args], {
    env: opts.env ?? emu.gitEnv(),
    extendEnv: false,
    reject: false,
    cwd: opts.cwd ?? dir,
    stdin: 'ignore',
    timeout: 60_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function gitOk(args: string[], opts: { cwd?: string; env?: Record<string, string>; helper?: boolean } = {}): Promise<string> {
  const r = await git(args, opts);
  if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')} exited ${r.exitCode}\n${r.stderr}`);
  return r.stdout.trim();
}

async function gh(args: string[]): Promise<Result> {
  const r = await execa(GH, args, { env: emu.ghEnv(), extendEnv: false, reject: false, cwd: dir, stdin: 'ignore', timeout: 60_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function ghJson<T>(args: string[]): Promise<T> {
  const r = await gh(args);
  if (r.exitCode !== 0) throw new Error(`gh ${args.join(' ')} exited ${r.exitCode}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Clones `fullName` into dir/`into` and returns the work tree. */
async function clone(fullName: string, into: string): Promise<string> {
  await gitOk(['clone', '--quiet', emu.cloneUrl(fullName), into]);
  return path.join(dir, into);
}

/** Writes a file, commits it and returns the new commit's sha. */
async function commitFile(tree: string, file: string, text: string, message = `add ${file}`): Promise<string> {
  fs.writeFileSync(path.join(tree, file), text);
  await gitOk(['add', file], { cwd: tree });
  await gitOk(['commit', '--quiet', '-m', message], { cwd: tree });
  return gitOk(['rev-parse', 'HEAD'], { cwd: tree });
}

describe.runIf(hasTools)('git over https against the emulator', () => {
  it('clones an auto_init repository with credentials from gh, pushes, and a second clone sees the push', async () => {
    emu.createRepo('octo/backups');
    const n = emu.requests.length;
    const a = await clone('octo/backups', 'a');
    expect(fs.readFileSync(path.join(a, 'README.md'), 'utf8')).toBe('# backups\n');
    expect(await gitOk(['log', '--format=%s|%an|%cn'], { cwd: a })).toBe('Initial commit|octo|GitHub');
    expect(await gitOk(['rev-parse', 'HEAD'], { cwd: a })).toBe(emu.repo('octo/backups')!.branches.main);
    // Through the tunnel: anonymous first (401, private repository), then with gh's token.
    const seen = emu.requests.slice(n).map((q) => `${q.method} ${q.scheme ?? 'http'} ${q.host} ${q.path} ${q.status}`);
    expect(seen.slice(0, 3)).toEqual([
      'CONNECT http github.localhost:443  200',
      'GET https github.localhost /octo/backups.git/info/refs?service=git-upload-pack 401',
      'GET https github.localhost /octo/backups.git/info/refs?service=git-upload-pack 200',
    ]);

    const sha = await commitFile(a, 'notes.txt', 'first snapshot\n');
    const push = await git(['push', 'origin', 'main'], { cwd: a });
    expect(push.exitCode, push.stderr).toBe(0);
    expect(push.stderr).toMatch(/\.\.[0-9a-f]+ +main -> main/);
    expect(emu.repo('octo/backups')!.branches).toEqual({ main: sha });
    // The bare repository on disk has it too.
    expect((await execa('git', ['--git-dir', emu.repo('octo/backups')!.gitDir, 'log', '-1', '--format=%H %s'], { env: emu.gitEnv(), extendEnv: false })).stdout).toBe(`${sha} add notes.txt`);

    // gitEnv({ credentialHelper: true }) configures gh the way `gh auth setup-git` does.
    await gitOk(['clone', '--quiet', emu.cloneUrl('octo/backups'), 'b'], { helper: false, env: emu.gitEnv({ credentialHelper: true }) });
    expect(fs.readFileSync(path.join(dir, 'b', 'notes.txt'), 'utf8')).toBe('first snapshot\n');
    expect(await gitOk(['rev-parse', 'HEAD'], { cwd: path.join(dir, 'b') })).toBe(sha);
  });

  it('an empty repository is an empty bare repository: HEAD on its default branch, releases refused until the first push', async () => {
    emu.createRepo('octo/blank', { empty: true, defaultBranch: 'trunk' });
    expect(emu.repo('octo/blank')).toMatchObject({ empty: true, defaultBranch: 'trunk', branches: {} });
    const before = await gh(['release', 'create', 'v1', '-R', 'octo/blank', '--notes', 'x']);
    expect(before.stderr.trim()).toBe('HTTP 422: Validation Failed (http://api.github.localhost/repos/octo/blank/releases)\nRepository is empty.');

    const r = await git(['clone', emu.cloneUrl('octo/blank'), 'w']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: You appear to have cloned an empty repository.');
    const w = path.join(dir, 'w');
    // git 2.31+ takes an empty remote's unborn HEAD: the clone is on trunk, not init.defaultBranch.
    expect(await gitOk(['symbolic-ref', 'HEAD'], { cwd: w })).toBe('refs/heads/trunk');

    const sha = await commitFile(w, 'a.txt', 'a\n');
    await gitOk(['push', '--quiet', 'origin', 'trunk'], { cwd: w });
    expect(emu.repo('octo/blank')).toMatchObject({ empty: false, defaultBranch: 'trunk', branches: { trunk: sha } });

    // Now a release can be published, and its tag is a real tag on the pushed commit.
    const ok = await gh(['release', 'create', 'v1', '-R', 'octo/blank', '--notes', 'x']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(await gitOk(['ls-remote', '--tags', 'origin'], { cwd: w })).toBe(`${sha}\trefs/tags/v1`);
  });

  it('gh repo create --add-readme makes a real first commit on the account default branch', async () => {
    await emu.close();
    emu = await startGithubEmulator({ defaultBranch: 'trunk' });
    const created = await gh(['repo', 'create', 'octo/fresh', '--private', '--add-readme', '--description', 'wb backups']);
    expect(created.exitCode, created.stderr).toBe(0);
    const w = await clone('octo/fresh', 'w');
    expect(await gitOk(['branch', '--show-current'], { cwd: w })).toBe('trunk');
    expect(fs.readFileSync(path.join(w, 'README.md'), 'utf8')).toBe('# fresh\nwb backups\n');
    expect(emu.repo('octo/fresh')).toMatchObject({ defaultBranch: 'trunk', empty: false });
  });

  it('a revoked or wrong token fails with git\'s authentication error; no token cannot read a private repository', async () => {
    emu.createRepo('octo/backups');
    emu.createRepo('octo/open', { private: false });
    const w = await clone('octo/backups', 'w');
    const head = emu.repo('octo/backups')!.branches.main;
    await commitFile(w, 'x.txt', 'x\n');

    emu.revokeToken();
    const push = await git(['push', 'origin', 'main'], { cwd: w });
    expect(push.exitCode).toBe(128);
    expect(push.stderr).toContain('remote: Invalid username or token. Password authentication is not supported for Git operations.');
    expect(push.stderr).toContain("fatal: Authentication failed for 'https://github.localhost/octo/backups.git/'");
    expect(emu.repo('octo/backups')!.branches.main).toBe(head);
    expect(emu.requests.at(-1)).toMatchObject({ method: 'GET', path: '/octo/backups.git/info/refs?service=git-receive-pack', status: 401, scheme: 'https' });

    // git only sends credentials after a 401: a wrong token fails on a private repository...
    const wrong = await git(['clone', emu.cloneUrl('octo/backups'), 'wrong'], { env: emu.gitEnv({ token: 'nope' }) });
    expect(wrong.exitCode).toBe(128);
    expect(wrong.stderr).toContain("fatal: Authentication failed for 'https://github.localhost/octo/backups.git/'");
    // ...and is never sent for a public one, which anyone can fetch.
    expect((await git(['clone', '--quiet', emu.cloneUrl('octo/open'), 'wrong-open'], { env: emu.gitEnv({ token: 'nope' }) })).exitCode).toBe(0);

    // Without a token gh gives git nothing: public repositories can still be cloned, private ones not.
    const anon = emu.gitEnv({ token: null });
    expect((await git(['clone', '--quiet', emu.cloneUrl('octo/open'), 'open'], { env: anon })).exitCode).toBe(0);
    const priv = await git(['clone', emu.cloneUrl('octo/backups'), 'priv'], { env: anon });
    expect(priv.exitCode).toBe(128);
    expect(priv.stderr).toContain("fatal: could not read Username for 'https://github.localhost': terminal prompts disabled");
  });

  it('a missing repository is "Repository not found"', async () => {
    const r = await git(['clone', emu.cloneUrl('octo/missing'), 'm']);
    expect(r.exitCode).toBe(128);
    expect(r.stderr).toContain('remote: Repository not found.');
    expect(r.stderr).toContain("fatal: repository 'https://github.localhost/octo/missing.git/' not found");
    expect(emu.requests.at(-1)).toMatchObject({ path: '/octo/missing.git/info/refs?service=git-upload-pack', status: 404 });
    expect(fs.existsSync(path.join(dir, 'm'))).toBe(false);
  });

  it('refuses what GitHub refuses: pull refs, deleting the default branch; plain http redirects to https', async () => {
    emu.createRepo('octo/r');
    const w = await clone('octo/r', 'w');
    const hidden = await git(['push', 'origin', 'HEAD:refs/pull/1/head'], { cwd: w });
    expect(hidden.exitCode).not.toBe(0);
    expect(hidden.stderr).toContain('! [remote rejected] HEAD -> refs/pull/1/head (deny updating a hidden ref)');
    const del = await git(['push', 'origin', ':main'], { cwd: w });
    expect(del.exitCode).not.toBe(0);
    expect(del.stderr).toContain('refusing to delete the current branch: refs/heads/main');
    expect(emu.repo('octo/r')!.branches).toHaveProperty('main');

    const viaHttp = await git(['ls-remote', 'http://github.localhost/octo/r.git', 'main']);
    expect(viaHttp.exitCode, viaHttp.stderr).toBe(0);
    expect(viaHttp.stderr).toContain('warning: redirecting to https://github.localhost/octo/r.git/');
    expect(viaHttp.stdout.trim()).toBe(`${emu.repo('octo/r')!.branches.main}\trefs/heads/main`);
  });

  it('a long fetch negotiation sends a gzip-compressed upload-pack request, and http-backend takes it', async () => {
    emu.createRepo('octo/r');
    const a = await clone('octo/r', 'a');
    const b = await clone('octo/r', 'b');
    // 80 local commits the remote lacks, newer than its root: git offers them as "have" lines
    // before it reaches the common commit, which makes a request big enough to be gzipped.
    const t0 = Math.floor(Date.now() / 1000) + 60;
    const commits = Array.from({ length: 80 }, (_, i) => `commit refs/heads/local\ncommitter t <t@example.com> ${t0 + i} +0000\ndata 3\nc${String(i).padStart(2, '0')}\n${i === 0 ? 'from refs/heads/main^0\n' : ''}M 644 inline f${i}\ndata 1\n${i % 10}\n`);
    await execa('git', ['fast-import', '--quiet'], { cwd: a, env: emu.gitEnv(), extendEnv: false, input: commits.join('') });
    await gitOk(['checkout', '--quiet', 'local'], { cwd: a });
    const pushed = await commitFile(b, 'b.txt', 'b\n');
    await gitOk(['push', '--quiet', 'origin', 'main'], { cwd: b });

    const r = await git(['fetch', 'origin'], { cwd: a, env: { ...emu.gitEnv(), GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('=> Send header: Content-Encoding: gzip');
    expect(await gitOk(['rev-parse', 'origin/main'], { cwd: a })).toBe(pushed);
  });

  it('a 500 injected on receive-pack fails the push; the next push goes through', async () => {
    emu.createRepo('octo/r');
    const w = await clone('octo/r', 'w');
    const sha = await commitFile(w, 'a.txt', 'a\n');
    emu.inject({ kind: 'status', status: 500, match: { method: 'POST', host: 'github.localhost', path: /\/git-receive-pack$/ } });
    const failed = await git(['push', 'origin', 'main'], { cwd: w });
    expect(failed.exitCode).not.toBe(0);
    expect(failed.stderr).toContain('error: RPC failed; HTTP 500');
    expect(emu.repo('octo/r')!.branches.main).not.toBe(sha);
    expect(emu.requests.find((q) => q.fault === 'status')).toMatchObject({ method: 'POST', path: '/octo/r.git/git-receive-pack', status: 500, scheme: 'https' });
    await gitOk(['push', '--quiet', 'origin', 'main'], { cwd: w });
    expect(emu.repo('octo/r')!.branches.main).toBe(sha);
  });
});

interface Pull {
  number: number;
  state: string;
  html_url: string;
  draft: boolean;
  title: string;
  body: string | null;
  head: { ref: string; sha: string; label: string };
  base: { ref: string; sha: string };
  user: { login: string };
  merged?: boolean;
  mergeable?: boolean | null;
  commits?: number;
  additions?: number;
}

describe.runIf(hasTools)('pull requests through gh api', () => {
  const create = (head: string, title = `PR from ${head}`): Promise<Result> =>
    gh(['api', '-X', 'POST', 'repos/octo/backups/pulls', '-f', `title=${title}`, '-f', `head=${head}`, '-f', 'base=main', '-f', 'body=made by wb-backup']);
  const numbers = async (query: string): Promise<number[]> => (await ghJson<Pull[]>(['api', `repos/octo/backups/pulls${query}`])).map((p) => p.number);

  let w: string;
  beforeEach(async () => {
    emu.createRepo('octo/backups');
    w = await clone('octo/backups', 'w');
  });

  it('a PR needs a pushed branch with new commits, and opens once per head', async () => {
    const main = emu.repo('octo/backups')!.branches.main!;

    // The branch is not on the remote yet.
    const noHead = await create('wb/snap-1');
    expect(noHead.exitCode).not.toBe(0);
    expect(noHead.stderr.trim()).toBe('gh: Validation Failed (HTTP 422)');
    expect(JSON.parse(noHead.stdout)).toEqual({
      message: 'Validation Failed',
      documentation_url: 'https://docs.github.com/rest/pulls/pulls#create-a-pull-request',
      errors: [{ resource: 'PullRequest', field: 'head', code: 'invalid' }],
      status: '422',
    });

    // Pushed, but nothing main lacks.
    await gitOk(['push', '--quiet', 'origin', 'HEAD:wb/snap-1'], { cwd: w });
    const empty = await create('wb/snap-1');
    expect(empty.stderr.trim()).toBe('gh: Validation Failed (HTTP 422)');
    expect(JSON.parse(empty.stdout)).toMatchObject({ errors: [{ resource: 'PullRequest', code: 'custom', message: 'No commits between main and wb/snap-1' }] });

    await gitOk(['checkout', '--quiet', '-b', 'wb/snap-1'], { cwd: w });
    const sha = await commitFile(w, 'snap.txt', 'one\ntwo\n');
    await gitOk(['push', '--quiet', 'origin', 'wb/snap-1'], { cwd: w });
    const made = await create('wb/snap-1', 'Snapshot 1');
    expect(made.exitCode, made.stderr).toBe(0);
    const pr = JSON.parse(made.stdout) as Pull;
    expect(pr).toMatchObject({
      number: 1,
      state: 'open',
      title: 'Snapshot 1',
      body: 'made by wb-backup',
      draft: false,
      merged: false,
      mergeable: null, // GitHub computes it in the background
      html_url: 'http://github.localhost/octo/backups/pull/1',
      head: { ref: 'wb/snap-1', sha, label: 'octo:wb/snap-1' },
      base: { ref: 'main', sha: main },
      user: { login: 'octo' },
      commits: 1,
      additions: 2,
    });
    expect(emu.repo('octo/backups')!.pulls).toEqual([
      expect.objectContaining({ number: 1, state: 'open', title: 'Snapshot 1', head: { ref: 'wb/snap-1', sha, label: 'octo:wb/snap-1' }, base: { ref: 'main', sha: main } }),
    ]);

    // Same head again, either spelling: GitHub's duplicate error.
    for (const head of ['wb/snap-1', 'octo:wb/snap-1']) {
      const dup = await create(head);
      expect(dup.exitCode).not.toBe(0);
      expect(dup.stderr.trim()).toBe('gh: Validation Failed (HTTP 422)');
      expect(JSON.parse(dup.stdout)).toMatchObject({ errors: [{ resource: 'PullRequest', code: 'custom', message: 'A pull request already exists for octo:wb/snap-1.' }] });
    }
    // Missing title, missing base branch, missing head field.
    const noTitle = await gh(['api', '-X', 'POST', 'repos/octo/backups/pulls', '-f', 'head=wb/snap-1', '-f', 'base=main']);
    expect(JSON.parse(noTitle.stdout)).toMatchObject({ errors: [{ resource: 'PullRequest', code: 'missing_field', field: 'title' }] });
    const noBase = await gh(['api', '-X', 'POST', 'repos/octo/backups/pulls', '-f', 'title=t', '-f', 'head=wb/snap-1', '-f', 'base=nope']);
    expect(JSON.parse(noBase.stdout)).toMatchObject({ errors: [{ resource: 'PullRequest', field: 'base', code: 'invalid' }] });
    const noHeadField = await gh(['api', '-X', 'POST', 'repos/octo/backups/pulls', '-f', 'title=t', '-f', 'base=main']);
    expect(noHeadField.stderr.trim()).toBe('gh: Invalid request.\n\n"head" wasn\'t supplied. (HTTP 422)');
    expect(emu.repo('octo/backups')!.pulls).toHaveLength(1);

    // GitHub keeps the head under refs/pull/N/head.
    expect(await gitOk(['ls-remote', 'origin', 'refs/pull/*'], { cwd: w })).toBe(`${sha}\trefs/pull/1/head`);
  });

  it('lists and filters by head (owner:branch only), base and state; GET by number; the head follows pushes', async () => {
    for (const b of ['wb/a', 'wb/b']) {
      await gitOk(['checkout', '--quiet', '-b', b, 'main'], { cwd: w });
      await commitFile(w, `${b.replace('/', '-')}.txt`, `${b}\n`);
      await gitOk(['push', '--quiet', 'origin', b], { cwd: w });
      expect((await create(b)).exitCode).toBe(0);
    }
    expect(await numbers('')).toEqual([2, 1]); // newest first
    expect(await numbers('?head=octo:wb/a&state=open')).toEqual([1]);
    expect(await numbers('?head=someone-else:wb/a')).toEqual([]);
    expect(await numbers('?head=wb/a')).toEqual([2, 1]); // no owner: GitHub ignores the filter
    expect(await numbers('?base=main&direction=asc')).toEqual([1, 2]);
    expect(await numbers('?base=trunk')).toEqual([]);

    const closed = await ghJson<Pull>(['api', '-X', 'PATCH', 'repos/octo/backups/pulls/1', '-f', 'state=closed']);
    expect(closed.state).toBe('closed');
    expect(await numbers('?state=closed')).toEqual([1]);
    expect(await numbers('?state=all')).toEqual([2, 1]);
    expect(await numbers('')).toEqual([2]);

    const one = await ghJson<Pull>(['api', 'repos/octo/backups/pulls/2']);
    expect(one).toMatchObject({ number: 2, state: 'open', mergeable: true, commits: 1, head: { ref: 'wb/b' } });
    const missing = await gh(['api', 'repos/octo/backups/pulls/99']);
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr.trim()).toBe('gh: Not Found (HTTP 404)');

    // A push to the head branch moves the open PR's head; deleting the branch closes it.
    const next = await commitFile(w, 'more.txt', 'more\n');
    await gitOk(['push', '--quiet', 'origin', 'wb/b'], { cwd: w });
    expect(emu.repo('octo/backups')!.pulls[1]).toMatchObject({ number: 2, state: 'open', head: { sha: next } });
    expect((await ghJson<Pull>(['api', 'repos/octo/backups/pulls/2'])).commits).toBe(2);
    await gitOk(['push', '--quiet', 'origin', ':wb/b'], { cwd: w });
    expect(emu.repo('octo/backups')!.pulls.map((p) => p.state)).toEqual(['closed', 'closed']);
    expect(emu.repo('octo/backups')!.branches).not.toHaveProperty('wb/b');
  });

  it('pushing the head into the base (a merge outside the web UI) marks the PR merged and closed; it cannot be reopened', async () => {
    await gitOk(['checkout', '--quiet', '-b', 'wb/m'], { cwd: w });
    const sha = await commitFile(w, 'm.txt', 'merged\n');
    await gitOk(['push', '--quiet', 'origin', 'wb/m'], { cwd: w });
    expect((await create('wb/m')).exitCode).toBe(0);
    await gitOk(['push', '--quiet', 'origin', 'wb/m:main'], { cwd: w });
    const pr = await ghJson<Pull & { merged_at: string | null }>(['api', 'repos/octo/backups/pulls/1']);
    expect(pr).toMatchObject({ state: 'closed', merged: true, head: { sha } });
    expect(pr.merged_at).not.toBeNull();
    expect(await numbers('')).toEqual([]);
    const reopen = await gh(['api', '-X', 'PATCH', 'repos/octo/backups/pulls/1', '-f', 'state=open']);
    expect(reopen.stderr.trim()).toBe('gh: Validation Failed (HTTP 422)');
  });

  it('404 for a repository the caller cannot see, 401 with a bad token', async () => {
    const missing = await gh(['api', '-X', 'POST', 'repos/octo/nope/pulls', '-f', 'title=t', '-f', 'head=a', '-f', 'base=main']);
    expect(missing.stderr.trim()).toBe('gh: Not Found (HTTP 404)');
    expect((await gh(['api', 'repos/octo/nope/pulls'])).stderr.trim()).toBe('gh: Not Found (HTTP 404)');
    emu.revokeToken();
    const revoked = await gh(['api', 'repos/octo/backups/pulls?head=octo:main&state=open']);
    expect(revoked.exitCode).not.toBe(0);
    expect(revoked.stderr.trim()).toBe('gh: Bad credentials (HTTP 401)');
  });
});
