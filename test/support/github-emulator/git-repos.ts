/**
 * The real bare repositories behind emulated repositories, one per repository under the emulator's
 * temp home (`<root>/<owner>/<name>.git`, lower case: GitHub names are case-insensitive).
 *
 * Every git run here is short, so it is synchronous (the public `createRepo` is synchronous too),
 * uses an argument array (never a shell), and reads no system or user git config.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Identity {
  name: string;
  email: string;
}

export interface Refs {
  /** branch name -> commit sha */
  branches: Map<string, string>;
  /** tag name -> commit sha (annotated tags peeled) */
  tags: Map<string, string>;
}

/** Config every git run in a bare repository gets, as GIT_CONFIG_* variables. */
const BARE_CONFIG: ReadonlyArray<readonly [string, string]> = [
  // No background `gc --auto` after a push: it could outlive the emulator and its temp dir.
  ['gc.auto', '0'],
  ['receive.autogc', 'false'],
  // GitHub refuses pushes to the refs it manages for pull requests ("deny updating a hidden ref").
  ['receive.hideRefs', 'refs/pull'],
  // Deleting the default branch is refused, without git's long advice about the setting.
  ['receive.denyDeleteCurrent', 'refuse'],
  ['core.logAllRefUpdates', 'false'],
];

export class GitStore {
  constructor(
    /** Directory holding one `<owner>/<name>.git` per repository. */
    readonly root: string,
    /** HOME for git runs, so no user config is read. */
    private readonly home: string,
  ) {
    fs.mkdirSync(root, { recursive: true });
    fs.mkdirSync(home, { recursive: true });
  }

  /** `owner/name.git`, relative to `root` (the PATH_INFO prefix for git http-backend). */
  relPath(owner: string, name: string): string {
    return `${owner.toLowerCase()}/${name.toLowerCase()}.git`;
  }

  /** Environment for git runs in the bare repositories (also used for git http-backend). */
  env(extra: Record<string, string> = {}): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: this.home,
      XDG_CONFIG_HOME: path.join(this.home, '.config'),
      LANG: 'C',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_COUNT: String(BARE_CONFIG.length),
    };
    BARE_CONFIG.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    return { ...env, ...extra };
  }

  git(gitDir: string, args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): string {
    return execFileSync('git', ['--git-dir', gitDir, ...args], {
      env: this.env(opts.env),
      input: opts.input ?? '',
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  }

  /** Like `git`, but returns the exit code instead of throwing on 1 (for yes/no commands). */
  gitStatus(gitDir: string, args: string[]): { code: number; stdout: string } {
    try {
      return { code: 0, stdout: this.git(gitDir, args) };
    } catch (err) {
      const e = err as { status?: number | null; stdout?: string };
      if (typeof e.status === 'number' && e.status > 0) return { code: e.status, stdout: e.stdout ?? '' };
      throw err;
    }
  }

  /**
   * Creates the bare repository, HEAD pointing at `defaultBranch`. With `readme`, commits a README.md
   * on that branch as GitHub's auto_init does, and returns the commit sha (else null).
   */
  create(
    owner: string,
    name: string,
    opts: { defaultBranch: string; readme?: { text: string; author: Identity } },
  ): { gitDir: string; headSha: string | null } {
    const gitDir = path.join(this.root, this.relPath(owner, name));
    if (fs.existsSync(gitDir)) throw new Error(`bare repository ${gitDir} already exists`);
    fs.mkdirSync(path.dirname(gitDir), { recursive: true });
    // --template= : no sample hooks, nothing but what git needs.
    execFileSync('git', ['init', '--quiet', '--bare', '--template=', `--initial-branch=${opts.defaultBranch}`, gitDir], { env: this.env(), stdio: 'pipe' });
    if (!opts.readme) return { gitDir, headSha: null };
    const when = `${Math.floor(Date.now() / 1000)} +0000`;
    const msg = Buffer.from('Initial commit\n');
    const text = Buffer.from(opts.readme.text);
    const a = opts.readme.author;
    // One fast-import run writes blob, tree, commit and branch; get-mark prints the commit sha.
    const stream = Buffer.concat([
      Buffer.from(
        `commit refs/heads/${opts.defaultBranch}\nmark :1\nauthor ${a.name} <${a.email}> ${when}\ncommitter GitHub <noreply@github.com> ${when}\ndata ${msg.length}\n`,
      ),
      msg,
      Buffer.from(`M 100644 inline README.md\ndata ${text.length}\n`),
      text,
      Buffer.from('\nget-mark :1\n'),
    ]);
    const sha = this.git(gitDir, ['fast-import', '--quiet'], { input: stream }).trim();
    if (!/^[0-9a-f]{40}$/.test(sha)) throw new Error(`fast-import gave no commit sha: ${JSON.stringify(sha)}`);
    return { gitDir, headSha: sha };
  }

  /** Branches and tags as they are on disk. */
  refs(gitDir: string): Refs {
    const out = this.git(gitDir, ['for-each-ref', '--format=%(objectname) %(*objectname) %(refname)', 'refs/heads', 'refs/tags']);
    const refs: Refs = { branches: new Map(), tags: new Map() };
    for (const line of out.split('\n')) {
      const m = /^([0-9a-f]{40}) ([0-9a-f]{40})? ?(refs\/(heads|tags)\/.+)$/.exec(line);
      if (!m) continue;
      const sha = m[2] ?? m[1]!;
      if (m[4] === 'heads') refs.branches.set(m[3]!.slice('refs/heads/'.length), sha);
      else refs.tags.set(m[3]!.slice('refs/tags/'.length), sha);
    }
    return refs;
  }

  /** The sha `rev` names if it is a commit in the repository, else undefined. */
  commit(gitDir: string, rev: string): string | undefined {
    const r = this.gitStatus(gitDir, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  updateRef(gitDir: string, ref: string, sha: string): void {
    this.git(gitDir, ['update-ref', ref, sha]);
  }

  deleteRef(gitDir: string, ref: string): void {
    this.git(gitDir, ['update-ref', '-d', ref]);
  }

  setHead(gitDir: string, branch: string): void {
    this.git(gitDir, ['symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
  }

  /** `git rev-list --count base..head`: commits head has that base lacks. */
  aheadBy(gitDir: string, base: string, head: string): number {
    return Number(this.git(gitDir, ['rev-list', '--count', `${base}..${head}`]).trim());
  }

  /** Lines added and removed and files changed from the merge base to head (three-dot diff). */
  diffStat(gitDir: string, base: string, head: string): { additions: number; deletions: number; changedFiles: number } {
    const out = this.git(gitDir, ['diff', '--numstat', `${base}...${head}`]);
    const s = { additions: 0, deletions: 0, changedFiles: 0 };
    for (const line of out.split('\n')) {
      const m = /^(\d+|-)\t(\d+|-)\t/.exec(line);
      if (!m) continue;
      s.changedFiles++;
      s.additions += m[1] === '-' ? 0 : Number(m[1]);
      s.deletions += m[2] === '-' ? 0 : Number(m[2]);
    }
    return s;
  }

  /** Whether head merges into base without conflicts (`git merge-tree --write-tree`, git >= 2.38). */
  mergeable(gitDir: string, base: string, head: string): boolean {
    return this.gitStatus(gitDir, ['merge-tree', '--write-tree', '--no-messages', base, head]).code === 0;
  }
}
