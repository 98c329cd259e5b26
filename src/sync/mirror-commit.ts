import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../core/git.js';
import { gitOrThrow, type SyncRemote } from './git-remote.js';
import { applyDeferral, deferralReason, planDeferral } from './push-budget.js';
import { listFiles, sameBytes } from './tree-files.js';
import { mirrorDbDir } from '../root/names.js';
import { replacedManifestAt, replacedManifestIn, type MirrorManifest } from './mirror-manifest.js';

const IDENTITY = ['-c', 'user.name=wb-backup', '-c', 'user.email=wb-backup@users.noreply.localhost'];

/**
 * Make the mirror's part of the clone equal to `fresh`: changed files are rewritten, unchanged ones
 * left as they are (so git does not re-read them), and what the mirror owned but no longer
 * produces (dropped tables, deleted rows' documents, removed databases) is deleted. Other files in
 * the repository are kept.
 */
/** Returns how many files it wrote or deleted. */
export function applyMirror(repo: string, fresh: string, databases: readonly string[]): number {
  let touched = 0;
  const previous = Object.keys(replacedManifestIn(repo)?.databases ?? {});
  const wanted = new Set(listFiles(fresh));
  // Database names (the clone's manifest is remote input) become folders only through names.ts:
  // a name like ../x must not make this delete files outside the clone.
  for (const dir of new Set([...previous, ...databases].filter((n) => typeof n === 'string').map(mirrorDbDir))) {
    for (const f of listFiles(path.join(repo, dir), `${dir}/`)) {
      if (wanted.has(f)) continue;
      fs.rmSync(path.join(repo, f));
      touched++;
    }
    removeEmptyDirs(path.join(repo, dir));
  }
  for (const f of wanted) {
    const src = path.join(fresh, f);
    const dest = path.join(repo, f);
    if (!sameBytes(src, dest)) {
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(src, dest);
      touched++;
    }
  }
  return touched;
}

function removeEmptyDirs(dir: string): void {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeEmptyDirs(path.join(dir, e.name));
  if (!fs.readdirSync(dir).length) fs.rmdirSync(dir);
}

export interface StagedMirror {
  /** paths added, changed or deleted relative to the parent */
  changed: string[];
  /** tables ("db/table") left at their previous version to keep under the per-push cap, with why */
  deferred: Array<{ path: string; reason: string }>;
}

/**
 * Check out `branch` at `parent` (an orphan branch when null), lay the mirror from `fresh` over it
 * and stage everything; nothing is committed yet. The README's sync time is rewritten only with real
 * changes, so a no-op sync stages nothing.
 */
export async function stageMirrorOn(
  repo: string,
  remote: SyncRemote,
  parent: string | null,
  branch: string,
  fresh: string,
  databases: readonly string[],
  readme: () => string,
  maxPushBytes: number,
): Promise<StagedMirror> {
  const current = (await runGit(['rev-parse', '-q', '--verify', 'HEAD'], { cwd: repo })).stdout.trim();
  const onBranch = (await runGit(['symbolic-ref', '-q', '--short', 'HEAD'], { cwd: repo })).stdout.trim() === branch;
  const inPlace = Boolean(parent) && onBranch && current === parent;
  if (parent && !inPlace) await gitOrThrow(repo, remote, ['checkout', '-q', '-f', '-B', branch, parent], 'checkout');
  else if (!parent) await gitOrThrow(repo, remote, ['checkout', '-q', '-f', '--orphan', branch], 'checkout --orphan');
  // Start from a clean tree (what is not materialized now is deleted). Cleaning stats every file, so
  // it is skipped when the last run left the tree clean at this very commit.
  if (!(inPlace && readCleanMark(repo) === current)) {
    await runGit(['reset', '-q', '--hard'], { cwd: repo });
    await runGit(['clean', '-q', '-fdx'], { cwd: repo });
  }
  clearCleanMark(repo);
  // Over the per-push cap, some tables wait for a later sync: lay a copy with their previous versions.
  const deferred = planDeferral(repo, fresh, maxPushBytes);
  let source = fresh;
  if (deferred.length) {
    source = `${fresh}.within-cap`;
    fs.rmSync(source, { recursive: true, force: true });
    fs.cpSync(fresh, source, { recursive: true });
    applyDeferral(repo, source, deferred, maxPushBytes);
  }
  let touched: number;
  try {
    touched = applyMirror(repo, source, databases);
  } finally {
    if (source !== fresh) fs.rmSync(source, { recursive: true, force: true });
  }
  // The README says when the data last changed: rewritten only with real changes, so a no-op sync stages nothing.
  if (touched > 0) fs.writeFileSync(path.join(repo, 'README.md'), readme());
  await gitOrThrow(repo, remote, ['add', '-A'], 'add');
  let changed = (await gitOrThrow(repo, remote, ['diff', '--cached', '--name-only'], 'diff')).split('\n').filter(Boolean);
  if (changed.length && !changed.some((p) => p !== 'README.md' && p !== 'manifest.json') && (!changed.includes('manifest.json') || (await onlySourceDiffers(repo)))) {
    // Only the README's time differs (a file rewritten with the same bytes git already had), or the
    // manifest's record of when the data was read: the data is what the parent holds, no change.
    await unstage(repo);
    changed = [];
  }
  // Nothing staged: the tree is exactly the parent, so the next run may skip cleaning.
  if (!changed.length && parent) writeCleanMark(repo, parent);
  return { changed, deferred: deferred.map((c) => ({ path: c.table, reason: deferralReason(c, maxPushBytes) })) };
}

/** Commit what stageMirrorOn staged; returns the new commit. */
export async function commitStaged(repo: string, remote: SyncRemote, message: string): Promise<string> {
  await gitOrThrow(repo, remote, [...IDENTITY, 'commit', '-q', '-m', message], 'commit');
  const commit = (await gitOrThrow(repo, remote, ['rev-parse', 'HEAD'], 'rev-parse')).trim();
  writeCleanMark(repo, commit);
  return commit;
}

/** The staged manifest.json equals HEAD's except for each database's `source` (when and from what it was read). */
async function onlySourceDiffers(repo: string): Promise<boolean> {
  const strip = (manifest: MirrorManifest | null): string | null => {
    if (!manifest) return null;
    const copy = structuredClone(manifest);
    for (const db of Object.values(copy.databases)) delete db.source;
    return JSON.stringify(copy);
  };
  const before = strip(await replacedManifestAt(repo, 'HEAD'));
  return before !== null && before === strip(replacedManifestIn(repo));
}

/** Forget what was staged (a dry run, or a route that will not commit on this parent). */
export async function unstage(repo: string): Promise<void> {
  await runGit(['reset', '-q', '--hard'], { cwd: repo });
  await runGit(['clean', '-q', '-fdx'], { cwd: repo });
  const head = (await runGit(['rev-parse', '-q', '--verify', 'HEAD'], { cwd: repo })).stdout.trim();
  if (head) writeCleanMark(repo, head);
}

/**
 * A mark inside .git saying "the work tree was clean at this commit". It is removed before the tree
 * is touched, so a run killed half-way leaves no mark and the next run cleans up properly.
 */
const markFile = (repo: string) => path.join(repo, '.git', 'wb-backup-clean-at');
function readCleanMark(repo: string): string | null {
  try {
    return fs.readFileSync(markFile(repo), 'utf8').trim();
  } catch {
    return null;
  }
}
function writeCleanMark(repo: string, commit: string): void {
  fs.writeFileSync(markFile(repo), `${commit}\n`);
}
function clearCleanMark(repo: string): void {
  fs.rmSync(markFile(repo), { force: true });
}
