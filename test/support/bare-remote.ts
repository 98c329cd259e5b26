import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Plain git, as a person would run it in another clone (synchronous: no in-process server is involved). */
export const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/**
 * A local bare repository whose default branch is not main (`trunk`), holding a commit of the
 * user's own (a LICENSE), as a sync remote would before wb-backup first pushes to it.
 */
export function seededBareRemote(work: string): string {
  const bare = path.join(work, 'remote.git');
  git(work, 'init', '-q', '--bare', '-b', 'trunk', bare);
  const seed = path.join(work, 'seed');
  git(work, 'clone', '-q', bare, seed);
  fs.writeFileSync(path.join(seed, 'LICENSE'), 'mine\n');
  git(seed, 'add', '-A');
  git(seed, 'commit', '-q', '-m', 'first');
  git(seed, 'push', '-q', 'origin', 'HEAD:trunk');
  return bare;
}

/** A bare repository `<work>/remote.git` (made once) and `root` configured to push to it directly on main. */
export function directSyncRemote(work: string, root: string): string {
  const bare = path.join(work, 'remote.git');
  if (!fs.existsSync(bare)) git(work, 'init', '-q', '--bare', '-b', 'main', bare);
  fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `sync:\n  github:\n    remote_url: ${bare}\n    branch: main\n    mode: direct\n`);
  return bare;
}

/**
 * An empty bare repository `<work>/<name>` (no commits). `unbornHead` is the branch its HEAD names;
 * with `tellHead: false` the server keeps that name to itself (lsrefs.unborn=ignore), as older git
 * servers do, so a client cannot learn which branch the first push should create.
 */
export function emptyBareRemote(work: string, opts: { name?: string; unbornHead?: string; tellHead?: boolean } = {}): string {
  const bare = path.join(work, opts.name ?? 'empty.git');
  git(work, 'init', '-q', '--bare', '-b', opts.unbornHead ?? 'trunk', bare);
  if (opts.tellHead === false) git(bare, 'config', 'lsrefs.unborn', 'ignore');
  return bare;
}
