import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WbError, describeError } from '../core/errors.js';
import { logger } from '../core/log.js';
import * as steps from './fs-steps.js';
import { ROLES, Stuck, crashPoint, disp, exists, journalPath, matches, type Ctx, type Journal, type JournalItem, type Role } from './journal.js';
import { RECORD_FILE, removeEmptyRecordDir } from './pre-restore.js';

/**
 * The moves of a swap, one database at a time: forward (live files aside, incoming ones in place)
 * and back (the reverse), each driven by what is on disk and checked against the journal's hashes,
 * so the same steps complete or undo a swap a crash interrupted. Every filesystem step goes
 * through fs-steps.ts. Also: the in-process roll-back when a step fails, and the journal's retiring.
 */

/**
 * The temporary of a cross-disk copy to `file`: beside it, under a short name derived from its name
 * (a suffix would push a long file name past the 255-byte limit; older versions used `<file>.wb-move-tmp`).
 */
function moveTmpOf(file: string): string {
  return path.join(path.dirname(file), `.wb-move-${createHash('sha256').update(path.basename(file)).digest('hex').slice(0, 24)}.tmp`);
}

/** rename, or copy+fsync+rename across filesystems; never over an existing file. */
function moveFile(ctx: Ctx, from: string, to: string): void {
  ctx.step = `moving ${disp(ctx, from)} to ${disp(ctx, to)}`;
  if (exists(to)) throw new Stuck(`${disp(ctx, to)} already exists, so ${disp(ctx, from)} cannot be moved there`);
  if (!exists(path.dirname(to))) steps.mkdir(path.dirname(to));
  try {
    steps.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = moveTmpOf(to);
    steps.unlink(tmp);
    steps.copyFile(from, tmp);
    steps.fsyncFile(tmp);
    steps.rename(tmp, to);
    steps.fsyncDir(path.dirname(to));
    steps.unlink(from);
  }
}

/** A partial cross-disk copy (its source is still whole: it is removed only after the rename). */
function removePartialCopies(ctx: Ctx, files: Array<string | null>): void {
  for (const f of files) {
    if (!f) continue;
    for (const tmp of [moveTmpOf(f), `${f}.wb-move-tmp`]) {
      if (!exists(tmp)) continue;
      ctx.step = `removing the partial copy ${disp(ctx, tmp)}`;
      steps.unlink(tmp);
    }
  }
}

/**
 * Bring one database to its new state: the old files aside in `kept`, the incoming ones in place.
 * Idempotent and driven by what is on disk, so it also completes a swap a crash interrupted.
 */
export function rollForwardItem(ctx: Ctx, item: JournalItem, afterAside?: () => void): void {
  const L = (r: Role) => item.real_target + r;
  const K = (r: Role) => item.kept + r;
  const I = (r: Role) => (item.incoming === null ? null : item.incoming + r);
  for (const r of ROLES) removePartialCopies(ctx, [L(r), K(r), I(r)]);
  // 1. The live files go aside.
  for (const r of ROLES) {
    const o = item.old[r];
    if (!o) continue;
    if (exists(K(r))) {
      if (!matches(K(r), o)) throw new Stuck(`${disp(ctx, K(r))} is not the file the journal set aside`);
      continue;
    }
    if (!matches(L(r), o)) throw new Stuck(`${disp(ctx, L(r))} should still hold the live file to set aside, and does not`);
    moveFile(ctx, L(r), K(r));
  }
  afterAside?.();
  // 2. The incoming files go into place.
  for (const r of ROLES) {
    const n = item.new[r];
    const inc = I(r);
    if (exists(L(r))) {
      if (r === '-shm') {
        // scratch: the one that came in stays; a stray one goes (SQLite rebuilds it)
        if (n && (inc === null || !exists(inc))) continue;
        ctx.step = `removing the stray ${disp(ctx, L(r))}`;
        steps.unlink(L(r));
      } else if (n && matches(L(r), n)) {
        // already moved; an incoming copy still there is a duplicate left by a cross-disk move
        if (inc !== null && matches(inc, n)) {
          ctx.step = `removing the duplicate ${disp(ctx, inc)}`;
          steps.unlink(inc);
        }
        continue;
      } else {
        const o = item.old[r];
        if (!(o && matches(L(r), o) && matches(K(r), o))) throw new Stuck(`${disp(ctx, L(r))} holds a file that is neither the old one nor the new one`);
        // a duplicate of the old file (a cross-disk move stopped before removing its source)
        ctx.step = `removing the duplicate ${disp(ctx, L(r))}`;
        steps.unlink(L(r));
      }
    }
    if (!n) continue;
    if (inc === null || !matches(inc, n)) throw new Stuck(`the new file ${inc ? disp(ctx, inc) : item.name + r} is missing or changed`);
    moveFile(ctx, inc, L(r));
  }
}

/**
 * Before anything moves: every file each direction needs is somewhere the journal knows, with its
 * recorded sha256. Otherwise nothing is moved at all (a half-done roll-back would make it worse).
 */
export function checkReachable(ctx: Ctx, items: JournalItem[], direction: 'forward' | 'back'): void {
  for (const item of items) {
    for (const r of ROLES) {
      if (r === '-shm') continue;
      const L = item.real_target + r;
      const K = item.kept + r;
      const I = item.incoming === null ? null : item.incoming + r;
      const o = item.old[r];
      const n = item.new[r];
      if (o && !matches(L, o) && !matches(K, o)) {
        // a live file that never left (a program may have written to it since): nothing to bring back
        const neverLeft = direction === 'back' && !exists(K) && exists(L) && !(n && matches(L, n));
        if (!neverLeft) throw new Stuck(`the old file ${disp(ctx, K)} is missing or changed`);
      }
      if (direction === 'forward' && n && !matches(L, n) && !(I !== null && matches(I, n))) throw new Stuck(`the new file ${I ? disp(ctx, I) : item.name + r} is missing or changed`);
    }
  }
}

/** Bring one database back to its old state: the incoming files back where they came from, the old ones in place. */
function rollBackItem(ctx: Ctx, item: JournalItem): void {
  const L = (r: Role) => item.real_target + r;
  const K = (r: Role) => item.kept + r;
  const I = (r: Role) => (item.incoming === null ? null : item.incoming + r);
  for (const r of ROLES) removePartialCopies(ctx, [L(r), K(r), I(r)]);
  const putAway = (r: Role) => {
    const inc = I(r);
    if (inc !== null && !exists(inc)) return moveFile(ctx, L(r), inc);
    if (r !== '-shm' && !(inc !== null && matches(inc, item.new[r]))) throw new Stuck(`${disp(ctx, L(r))} cannot go back to where it came from`);
    ctx.step = `removing ${disp(ctx, L(r))} (a copy of ${inc ? disp(ctx, inc) : 'nothing'})`;
    steps.unlink(L(r));
  };
  // 1. The new files leave the live place.
  for (const r of ROLES) {
    if (!exists(L(r))) continue;
    const o = item.old[r];
    const n = item.new[r];
    const asideExists = exists(K(r));
    if (r === '-shm') {
      if (asideExists || !o) putAway(r);
      continue;
    }
    if (n && matches(L(r), n) && (asideExists || !o)) putAway(r);
    else if (!asideExists) continue; // the live file never left (even if a program changed it since)
    else if (o && matches(L(r), o)) continue; // a duplicate of the copy aside: handled below
    else throw new Stuck(`${disp(ctx, L(r))} holds a file that is neither the old one nor the new one`);
  }
  // 2. The old files come back.
  for (const r of ROLES) {
    const o = item.old[r];
    if (!o) continue;
    if (exists(L(r))) {
      if (exists(K(r))) {
        // both: the one in place must be the old file, and the one aside its duplicate
        if (r !== '-shm' && !(matches(L(r), o) && matches(K(r), o))) throw new Stuck(`${disp(ctx, L(r))} is not the old file, and the old file is still aside`);
        ctx.step = `removing the duplicate ${disp(ctx, K(r))}`;
        steps.unlink(K(r));
      } else if (r !== '-shm' && !matches(L(r), o) && matches(L(r), item.new[r])) {
        throw new Stuck(`the old file ${disp(ctx, K(r))} is missing, and ${disp(ctx, L(r))} holds the new one`);
      }
      continue;
    }
    if (!matches(K(r), o)) {
      if (r === '-shm') continue; // scratch: SQLite rebuilds it
      throw new Stuck(`the old file ${disp(ctx, K(r))} is missing or changed`);
    }
    moveFile(ctx, K(r), L(r));
  }
}

export function syncFolders(ctx: Ctx, item: JournalItem): void {
  ctx.step = `flushing the folder of ${disp(ctx, item.real_target)}`;
  for (const dir of new Set([path.dirname(item.real_target), path.dirname(item.kept), ...(item.incoming ? [path.dirname(item.incoming)] : [])])) steps.fsyncDir(dir);
}

/** Where each file of each database is now, for a message a person can act on. */
export function describeFiles(root: string, journal: Journal): string {
  const ctx: Ctx = { root, step: '' };
  const what = (file: string, item: JournalItem, r: Role): string => {
    if (!exists(file)) return 'nothing';
    if (r === '-shm') return 'a -shm file';
    if (matches(file, item.old[r])) return 'the old file';
    if (matches(file, item.new[r])) return 'the new file';
    return 'an unknown file';
  };
  const lines: string[] = [];
  for (const item of journal.items) {
    for (const r of ROLES) {
      if (!item.old[r] && !item.new[r]) continue;
      const places = [item.real_target + r, item.kept + r, ...(item.incoming ? [item.incoming + r] : [])];
      lines.push(places.map((p) => `${disp(ctx, p)} holds ${what(p, item, r)}`).join(', '));
    }
  }
  return lines.join('; ');
}

/** Remove the journal (the swap is then final) and the staging folder it referred to. */
export function retire(ctx: Ctx, journal: Journal, warnings: string[]): void {
  ctx.step = 'removing the journal (restore-journal.json)';
  steps.unlink(journalPath(ctx.root));
  try {
    steps.fsyncDir(ctx.root);
  } catch (err) {
    warnings.push(`the data root's folder could not be flushed after removing the journal (${describeError(err)})`);
  }
  crashPoint('after-retire');
  removeStaging(ctx, journal.incoming_dir);
}

/** Staging only holds copies (of a snapshot or a mirror): removing it loses nothing. */
export function removeStaging(ctx: Ctx, dir: string | null): void {
  if (!dir || !exists(dir)) return;
  try {
    steps.removeTree(dir);
  } catch (err) {
    logger().warn({ dir: disp(ctx, dir), err: describeError(err) }, 'could not remove a staging folder; the next command removes it');
  }
}

/** 0666 less the umask: what a program creating the file in that folder would get. */
function defaultMode(): number {
  const mask = process.umask(0o022);
  process.umask(mask);
  return 0o666 & ~mask;
}

/** The incoming files take the live files' mode and owner, so the programs that open them still can. */
export function matchOwnership(ctx: Ctx, item: JournalItem): void {
  if (item.incoming === null) return;
  let liveMain: fs.Stats | null = null;
  try {
    liveMain = fs.statSync(item.real_target);
  } catch {
    /* new file: the folder's defaults */
  }
  for (const r of ROLES) {
    const inc = item.incoming + r;
    if (!exists(inc)) continue;
    let like = liveMain;
    try {
      like = fs.statSync(item.real_target + r);
    } catch {
      /* no live companion: take the main file's */
    }
    const mode = like ? like.mode & 0o7777 : defaultMode();
    const st = fs.statSync(inc);
    if ((st.mode & 0o7777) !== mode) {
      ctx.step = `setting the mode of ${disp(ctx, inc)}`;
      steps.chmod(inc, mode);
    }
    if (like && (st.uid !== like.uid || st.gid !== like.gid)) {
      ctx.step = `setting the owner of ${disp(ctx, inc)}`;
      steps.chown(inc, like.uid, like.gid);
    }
  }
}

export function hintFor(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EPERM' || code === 'EACCES' || code === 'EROFS')
    return 'wb-backup may not change a file or folder there: check its owner and permissions (and `lsattr` for the immutable flag), then try again.';
  if (code === 'ENOSPC') return 'The disk is full: free some space, then try again.';
  if (code === 'EIO') return 'The disk reported an I/O error: check it (dmesg, SMART) before trying again.';
  return 'Fix the cause, then try again.';
}

export function rollBackInProcess(ctx: Ctx, journal: Journal, cause: unknown): never {
  const failedStep = ctx.step;
  const why = `The ${journal.kind} failed while ${failedStep} (${describeError(cause)})`;
  const notes: string[] = [];
  try {
    putBack(ctx, journal);
  } catch (err) {
    throw new WbError(
      'recovery_needed',
      `${why}, and putting the databases back failed too (${err instanceof Stuck ? '' : `while ${ctx.step}: `}${describeError(err)}). Nothing was deleted: ${describeFiles(ctx.root, journal)}.`,
      `${hintFor(err)} Then run any wb-backup command (e.g. \`wb-backup list\`): it finishes putting them back, checking every file against restore-journal.json.`,
    );
  }
  try {
    retire(ctx, journal, notes);
  } catch (err) {
    notes.push(`its journal could not be removed (${describeError(err)}); the next wb-backup command removes it`);
  }
  const names = journal.items.map((i) => i.name).join(', ');
  throw new WbError('swap_failed', `${why}. Every database (${names}) is as it was before (checked by sha256): nothing was changed.${notes.length ? ` Note: ${notes.join('; ')}.` : ''}`, hintFor(cause));
}

/**
 * Every database back to its old files, then the (now empty) pre_restore folder removed. A record
 * is removed first: while it exists the operation counts as completed (and recovery completes it).
 */
export function putBack(ctx: Ctx, journal: Journal): void {
  const record = path.join(journal.pre_restore_dir, RECORD_FILE);
  if (exists(record)) {
    ctx.step = `removing ${disp(ctx, record)}`;
    steps.unlink(record);
    steps.fsyncDir(journal.pre_restore_dir);
  }
  checkReachable(ctx, journal.items, 'back');
  for (const item of [...journal.items].reverse()) {
    rollBackItem(ctx, item);
    try {
      syncFolders(ctx, item);
    } catch {
      // Where each file is does not depend on it: the old files are back in place either way.
    }
  }
  ctx.step = `removing the empty ${disp(ctx, journal.pre_restore_dir)}`;
  if (!removeEmptyRecordDir(journal.pre_restore_dir)) throw new Stuck(`${disp(ctx, journal.pre_restore_dir)} still holds files`);
}
