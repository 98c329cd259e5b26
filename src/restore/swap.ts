import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { WbError, errorMessage } from '../core/errors.js';
import { logger } from '../core/log.js';
import { displayPath } from '../root/paths.js';
import * as steps from './fs-steps.js';
import { hashFileSync } from '../core/hash.js';

/**
 * The swap puts new database files in place of live ones (restore, undo, import), journaled so that
 * a failure at any step is rolled back in the same process, and a crash at any instant is completed
 * or rolled back by the next wb-backup command: the live set is never half old, half new.
 *
 * Order: journal (every live file's and every incoming file's sha256) -> move each database (live
 * files aside into <root>/db.pre_restore_<ts>/<name>/, incoming files into place; the journal is
 * rewritten after each) -> pre-restore.json (the record that the operation completed, and the commit
 * point: only then can `restore --undo` use the folder, and recovery completes rather than rolls
 * back) -> journal removed -> staging removed. Every move is checked
 * against the journal's hashes; recovery never deletes or moves a file unless the file that takes
 * its place exists and matches, and stops keeping every copy when it cannot. See docs/restore.md.
 */

/** The files of one database: the main file and its companions (the -shm is scratch: not hashed). */
const ROLES = ['', '-wal', '-journal', '-shm'] as const;
type Role = (typeof ROLES)[number];

export type SwapKind = 'restore' | 'undo' | 'import' | 'recover';

export const SwapItemSchema = z.object({
  name: z.string(),
  /** live file to replace (a symbolic link is followed: its target file is swapped, the link stays) */
  target: z.string(),
  /** new file to put there (its -wal/-shm travel with it); null: only move the live file aside */
  incoming: z.string().nullable(),
});
export type SwapItem = z.infer<typeof SwapItemSchema>;

const FileRecSchema = z.object({ size: z.number(), sha256: z.string().nullable() });
type FileRec = z.infer<typeof FileRecSchema>;
/** role ('' for the main file, '-wal', ...) -> size and sha256; a role that is absent had no file */
const FilesSchema = z.record(z.string(), FileRecSchema);
type Files = z.infer<typeof FilesSchema>;

const JournalItemSchema = z.object({
  name: z.string(),
  /** the path the caller named (may be a symbolic link) */
  target: z.string(),
  /** the real file that is swapped */
  real_target: z.string(),
  incoming: z.string().nullable(),
  /** where the live main file goes; companions get their suffix */
  kept: z.string(),
  old: FilesSchema,
  new: FilesSchema,
});
type JournalItem = z.infer<typeof JournalItemSchema>;

const JournalSchema = z.object({
  version: z.literal(2),
  kind: z.enum(['restore', 'undo', 'import', 'recover']),
  snapshot_id: z.string().nullable(),
  started_at: z.string(),
  /** where the live files go: <root>/db.pre_restore_<ts> */
  pre_restore_dir: z.string(),
  /** staging folder of the incoming files, removed once the journal is retired; null for an undo */
  incoming_dir: z.string().nullable(),
  /** for an undo: the pre_restore folder it puts back */
  undoes: z.string().nullable(),
  items: z.array(JournalItemSchema),
  /** names of the databases fully moved (for people reading it: recovery goes by the record and the files) */
  moved: z.array(z.string()),
});
type Journal = z.infer<typeof JournalSchema>;

/** pre-restore.json: written only once the operation completed; `restore --undo` reads it. */
export interface PreRestoreInfo {
  version?: 2;
  completed?: boolean;
  snapshot_id: string | null;
  kind: SwapKind;
  created_at: string;
  completed_at?: string;
  /** for an undo: the folder it put back */
  undoes?: string | null;
  databases: Array<{ name: string; target: string; file: string; existed: boolean; files?: Files }>;
}

export const RECORD_FILE = 'pre-restore.json';

export function journalPath(root: string): string {
  return path.join(root, 'restore-journal.json');
}

/** Test seam for crash-safety tests: the real process kills itself with SIGKILL at a named point. */
export function crashPoint(name: string): void {
  if (process.env.WB_BACKUP_CRASH_POINT === name) process.kill(process.pid, 'SIGKILL');
}

export interface SwapRequest {
  root: string;
  kind: SwapKind;
  snapshotId: string | null;
  /** where the live files go; a unique name is chosen beside it if it already exists */
  preRestoreDir: string;
  /**
   * Staging folder holding the incoming files (null when they live elsewhere, as for an undo).
   * From the call on, the swap owns it: it is removed once the journal is retired, and kept while
   * a journal may still need it.
   */
  incomingDir: string | null;
  items: SwapItem[];
  /** for an undo: the pre_restore folder being put back */
  undoes?: string | null;
}

export interface SwapOutcome {
  /** the folder the live files went to (holds pre-restore.json) */
  preRestoreDir: string;
  /** something left for the next command to finish (the swap itself completed) */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// File states

function exists(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Hashes computed in this process, by inode: a rename keeps the inode and mtime, so a file checked
 * when the journal was written is not read again after each move; any write changes the mtime.
 */
const hashCache = new Map<string, { size: bigint; mtimeNs: bigint; sha256: string }>();

/** sha256 and size of a file, read in 1 MiB chunks (remembered during one swap or recovery). */
export function hashFile(file: string): FileRec {
  const st = fs.statSync(file, { bigint: true });
  const key = `${st.dev}:${st.ino}`;
  const hit = hashCache.get(key);
  if (hit && hit.size === st.size && hit.mtimeNs === st.mtimeNs) return { size: Number(hit.size), sha256: hit.sha256 };
  const rec = hashFileNow(file);
  if (BigInt(rec.size) === st.size) hashCache.set(key, { size: st.size, mtimeNs: st.mtimeNs, sha256: rec.sha256! });
  return rec;
}

function hashFileNow(file: string): FileRec {
  const { bytes, sha256 } = hashFileSync(file);
  return { size: bytes, sha256 };
}

function recordFiles(base: string | null): Files {
  const files: Files = {};
  if (base === null) return files;
  for (const role of ROLES) {
    const file = base + role;
    if (!exists(file)) continue;
    files[role] = role === '-shm' ? { size: fs.statSync(file).size, sha256: null } : hashFile(file);
  }
  return files;
}

/** The file exists and is the one recorded (a record without sha256, the -shm, matches any file). */
function matches(file: string, rec: FileRec | undefined): boolean {
  if (!rec || !exists(file)) return false;
  if (rec.sha256 === null) return true;
  const st = fs.statSync(file);
  return st.size === rec.size && hashFile(file).sha256 === rec.sha256;
}

/** Follow symbolic links to the file that is really swapped (the link itself is never replaced). */
export function realTarget(target: string): string {
  let current = path.resolve(target);
  for (let hops = 0; hops < 40; hops++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(current);
    } catch {
      // Absent: resolve its folder, so a folder reached through a link is still the real one.
      try {
        return path.join(fs.realpathSync(path.dirname(current)), path.basename(current));
      } catch {
        return current;
      }
    }
    if (!st.isSymbolicLink()) return path.join(fs.realpathSync(path.dirname(current)), path.basename(current));
    current = path.resolve(path.dirname(current), fs.readlinkSync(current));
  }
  throw new WbError('restore_refused', `${path.basename(target)} is a chain of more than 40 symbolic links. Nothing was changed.`);
}

/** Raised when the files are not where the journal says they should be: nothing more is moved. */
class Stuck extends Error {}

interface Ctx {
  root: string;
  /** what is being done, for the message when it fails */
  step: string;
}

/**
 * A path in a swap's messages: relative to the root inside it, else in full. These messages say what
 * is where so that a person can act on them: "a.db" alone would not say which folder holds it.
 */
const disp = (ctx: Ctx, p: string) => {
  const shown = displayPath(ctx.root, p);
  return shown === path.basename(p) && path.resolve(ctx.root, shown) !== path.resolve(p) ? path.resolve(p) : shown;
};

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
function rollForwardItem(ctx: Ctx, item: JournalItem, afterAside?: () => void): void {
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
function checkReachable(ctx: Ctx, items: JournalItem[], direction: 'forward' | 'back'): void {
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

function syncFolders(ctx: Ctx, item: JournalItem): void {
  ctx.step = `flushing the folder of ${disp(ctx, item.real_target)}`;
  for (const dir of new Set([path.dirname(item.real_target), path.dirname(item.kept), ...(item.incoming ? [path.dirname(item.incoming)] : [])])) steps.fsyncDir(dir);
}

/** Where each file of each database is now, for a message a person can act on. */
function describeFiles(root: string, journal: Journal): string {
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

// ---------------------------------------------------------------------------------------------
// Journal and record

function writeJournal(ctx: Ctx, journal: Journal): void {
  ctx.step = 'writing the journal (restore-journal.json)';
  steps.writeFileDurable(journalPath(ctx.root), `${JSON.stringify(journal, null, 2)}\n`);
}

/**
 * A target inside the data root is recorded relative to it, so that a root that was moved or
 * renamed since (or reached through another path) still puts its own databases back, never the
 * files at the old location. A target outside the root (configured there) stays absolute.
 */
function recordedTarget(root: string, target: string): string {
  const rel = path.relative(path.resolve(root), path.resolve(target));
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(target);
}

function recordOf(root: string, journal: Journal): PreRestoreInfo {
  return {
    version: 2,
    completed: true,
    snapshot_id: journal.snapshot_id,
    kind: journal.kind,
    created_at: journal.started_at,
    completed_at: new Date().toISOString(),
    undoes: journal.undoes,
    databases: journal.items.map((i) => ({ name: i.name, target: recordedTarget(root, i.target), file: path.basename(i.kept), existed: Boolean(i.old['']), files: i.old })),
  };
}

function writeRecord(ctx: Ctx, dir: string, info: PreRestoreInfo): void {
  ctx.step = `writing ${disp(ctx, path.join(dir, RECORD_FILE))}`;
  steps.mkdir(dir);
  steps.writeFileDurable(path.join(dir, RECORD_FILE), `${JSON.stringify(info, null, 2)}\n`);
}

function readRecord(dir: string): PreRestoreInfo | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, RECORD_FILE), 'utf8')) as PreRestoreInfo;
  } catch {
    return null;
  }
}

/** Files (not folders) under `dir`, other than the record and its temporary. */
function filesIn(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!(d === dir && (e.name === RECORD_FILE || e.name === `${RECORD_FILE}.tmp`))) found.push(p);
    }
  };
  walk(dir);
  return found;
}

/** Remove a pre_restore folder that holds no database file (never one that does). Returns false when it holds files. */
function removeEmptyRecordDir(dir: string): boolean {
  if (!exists(dir)) return true;
  if (filesIn(dir).length) return false;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else steps.unlink(p); // only the record and its temporary (checked above)
    }
    steps.rmdir(d);
  };
  walk(dir);
  return true;
}

/**
 * After an undo, the folder it put back holds no database file any more: its record goes too, so
 * no later undo can pick it (a folder that still holds a file is never removed).
 */
function removeSpentRecord(ctx: Ctx, undone: string | null, warnings: string[]): void {
  if (!undone) return;
  const dir = path.join(ctx.root, undone);
  try {
    if (!removeEmptyRecordDir(dir)) warnings.push(`${disp(ctx, dir)} still holds files after the undo; it is kept`);
  } catch (err) {
    warnings.push(`${disp(ctx, dir)} could not be removed after the undo (${errorMessage(err)}); the next wb-backup command removes it`);
  }
}

/** Remove the journal (the swap is then final) and the staging folder it referred to. */
function retire(ctx: Ctx, journal: Journal, warnings: string[]): void {
  ctx.step = 'removing the journal (restore-journal.json)';
  steps.unlink(journalPath(ctx.root));
  try {
    steps.fsyncDir(ctx.root);
  } catch (err) {
    warnings.push(`the data root's folder could not be flushed after removing the journal (${errorMessage(err)})`);
  }
  crashPoint('after-retire');
  removeStaging(ctx, journal.incoming_dir);
}

/** Staging only holds copies (of a snapshot or a mirror): removing it loses nothing. */
function removeStaging(ctx: Ctx, dir: string | null): void {
  if (!dir || !exists(dir)) return;
  try {
    steps.removeTree(dir);
  } catch (err) {
    logger().warn({ dir: disp(ctx, dir), err: errorMessage(err) }, 'could not remove a staging folder; the next command removes it');
  }
}

// ---------------------------------------------------------------------------------------------
// The swap

function uniqueDir(wanted: string): string {
  let dir = wanted;
  for (let i = 1; exists(dir); i++) dir = `${wanted}-${i}`;
  return dir;
}

/** 0666 less the umask: what a program creating the file in that folder would get. */
function defaultMode(): number {
  const mask = process.umask(0o022);
  process.umask(mask);
  return 0o666 & ~mask;
}

/** The incoming files take the live files' mode and owner, so the programs that open them still can. */
function matchOwnership(ctx: Ctx, item: JournalItem): void {
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

/**
 * Move every live file aside and every incoming file into place, as one unit.
 * On success the pre_restore folder holds the old files and a completed pre-restore.json.
 * Throws WbError 'swap_failed' when a step failed and everything was put back (checked by sha256),
 * or 'recovery_needed' when putting back failed too (every copy kept; the journal stays for the
 * next command, and the message says what is where).
 */
export function performSwap(req: SwapRequest): SwapOutcome {
  hashCache.clear();
  const ctx: Ctx = { root: req.root, step: 'reading the files to swap' };
  const preDir = uniqueDir(req.preRestoreDir);
  const warnings: string[] = [];
  let journal: Journal;
  try {
    const items = req.items.map((i): JournalItem => {
      const real = realTarget(i.target);
      return { name: i.name, target: i.target, real_target: real, incoming: i.incoming, kept: path.join(preDir, i.name, path.basename(real)), old: recordFiles(real), new: recordFiles(i.incoming) };
    });
    const seen = new Set<string>();
    for (const i of items) {
      if (i.incoming !== null && !i.new['']) throw new WbError('restore_refused', `The new file for ${i.name} is missing. Nothing was changed.`);
      if (seen.has(i.real_target)) throw new WbError('restore_refused', `Two databases lead to the same file ${disp(ctx, i.real_target)}. Nothing was changed.`, 'Give each database its own file.');
      seen.add(i.real_target);
    }
    journal = {
      version: 2,
      kind: req.kind,
      snapshot_id: req.snapshotId,
      started_at: new Date().toISOString(),
      pre_restore_dir: preDir,
      incoming_dir: req.incomingDir,
      undoes: req.undoes ?? null,
      items,
      moved: [],
    };
  } catch (err) {
    removeStaging(ctx, req.incomingDir);
    if (err instanceof WbError) throw err;
    throw new WbError('swap_failed', `The ${req.kind} failed while ${ctx.step} (${errorMessage(err)}). Nothing was changed.`, hintFor(err));
  }
  try {
    writeJournal(ctx, journal);
    crashPoint('after-journal');
    ctx.step = `creating ${disp(ctx, preDir)}`;
    steps.mkdirExclusive(preDir);
    for (const [index, item] of journal.items.entries()) {
      if (index > 0) crashPoint('between-moves');
      matchOwnership(ctx, item);
      rollForwardItem(ctx, item, index === 0 ? () => crashPoint('after-move-aside') : undefined);
      syncFolders(ctx, item);
      journal.moved.push(item.name);
      writeJournal(ctx, journal);
    }
    crashPoint('after-last-move');
    writeRecord(ctx, preDir, recordOf(ctx.root, journal));
    crashPoint('after-record');
  } catch (err) {
    rollBackInProcess(ctx, journal, err);
  }
  removeSpentRecord(ctx, journal.undoes, warnings);
  try {
    retire(ctx, journal, warnings);
  } catch (err) {
    // Done and recorded; only the journal is left: the next command sees every database moved and
    // finishes (it keeps staging until then).
    warnings.push(`the ${req.kind} completed, but its journal could not be removed (${errorMessage(err)}); the next wb-backup command finishes it`);
  }
  for (const w of warnings) logger().warn({ kind: req.kind }, w);
  return { preRestoreDir: preDir, warnings };
}

function hintFor(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EPERM' || code === 'EACCES' || code === 'EROFS')
    return 'wb-backup may not change a file or folder there: check its owner and permissions (and `lsattr` for the immutable flag), then try again.';
  if (code === 'ENOSPC') return 'The disk is full: free some space, then try again.';
  if (code === 'EIO') return 'The disk reported an I/O error: check it (dmesg, SMART) before trying again.';
  return 'Fix the cause, then try again.';
}

function rollBackInProcess(ctx: Ctx, journal: Journal, cause: unknown): never {
  const failedStep = ctx.step;
  const why = `The ${journal.kind} failed while ${failedStep} (${errorMessage(cause)})`;
  const notes: string[] = [];
  try {
    putBack(ctx, journal);
  } catch (err) {
    throw new WbError(
      'recovery_needed',
      `${why}, and putting the databases back failed too (${err instanceof Stuck ? '' : `while ${ctx.step}: `}${errorMessage(err)}). Nothing was deleted: ${describeFiles(ctx.root, journal)}.`,
      `${hintFor(err)} Then run any wb-backup command (e.g. \`wb-backup list\`): it finishes putting them back, checking every file against restore-journal.json.`,
    );
  }
  try {
    retire(ctx, journal, notes);
  } catch (err) {
    notes.push(`its journal could not be removed (${errorMessage(err)}); the next wb-backup command removes it`);
  }
  const names = journal.items.map((i) => i.name).join(', ');
  throw new WbError('swap_failed', `${why}. Every database (${names}) is as it was before (checked by sha256): nothing was changed.${notes.length ? ` Note: ${notes.join('; ')}.` : ''}`, hintFor(cause));
}

/**
 * Every database back to its old files, then the (now empty) pre_restore folder removed. A record
 * is removed first: while it exists the operation counts as completed (and recovery completes it).
 */
function putBack(ctx: Ctx, journal: Journal): void {
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

// ---------------------------------------------------------------------------------------------
// Recovery

export type RecoveryOutcome =
  | { action: 'none'; notes: string[] }
  | { action: 'rolled_forward' | 'rolled_back'; kind: SwapKind; snapshot_id: string | null; databases: string[]; notes: string[] };

/** True when something is left for recovery: a journal, a staging folder, or a record that is not marked completed. */
export function needsRecovery(root: string): boolean {
  return exists(journalPath(root)) || exists(`${journalPath(root)}.tmp`) || leftoverStagingDirs(root).length > 0 || incompleteRecordDirs(root).length > 0 || spentRecordDirs(root).length > 0;
}

/**
 * Finish or undo a swap that a crash (or an earlier failure) interrupted, remove staging folders of
 * dead restores, and clean up or adopt pre_restore folders without a completed record. Call holding
 * the root lock, before anything else touches the databases. Throws WbError 'recovery_needed',
 * saying what is where, when the files do not match the journal (then nothing is moved).
 */
export function recoverInterruptedSwap(root: string): RecoveryOutcome {
  hashCache.clear();
  const outcome = recoverJournal(root);
  const ctx: Ctx = { root, step: '' };
  // Staging folders only exist while a restore holds the lock: any seen now belong to a dead one.
  for (const dir of leftoverStagingDirs(root)) removeStaging(ctx, dir);
  outcome.notes.push(...settleRecords(root));
  return outcome;
}

export function leftoverStagingDirs(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith('db.staging_'))
    .map((n) => path.join(root, n));
}

/**
 * A journal names absolute paths, but belongs to the root it lies in: the root it was written in is
 * the folder of its pre_restore folder. When the root has been moved or copied since (the command
 * now runs on another path), every path that was inside the old root is taken inside this one, so
 * recovery never moves files of another root (a copy, or the original of this copy), nor reports
 * this root's databases as put back when it acted elsewhere. Paths outside the root stay.
 */
function rebaseJournal(journal: Journal, root: string): Journal {
  const oldRoot = path.dirname(path.resolve(journal.pre_restore_dir));
  const newRoot = path.resolve(root);
  const same = (() => {
    if (oldRoot === newRoot) return true;
    try {
      return fs.realpathSync(oldRoot) === fs.realpathSync(newRoot);
    } catch {
      return false;
    }
  })();
  if (same) return journal;
  const inside = (p: string) => {
    const rel = path.relative(oldRoot, path.resolve(p));
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : null;
  };
  const move = (p: string) => {
    const rel = inside(p);
    return rel === null ? p : path.join(newRoot, rel);
  };
  return {
    ...journal,
    pre_restore_dir: move(journal.pre_restore_dir),
    incoming_dir: journal.incoming_dir === null ? null : move(journal.incoming_dir),
    items: journal.items.map((i) => {
      const target = move(i.target);
      // The real file of a target inside the old root is the real file of its counterpart here.
      const real_target = inside(i.real_target) !== null ? move(i.real_target) : target !== i.target ? realTarget(target) : i.real_target;
      return { ...i, target, real_target, incoming: i.incoming === null ? null : move(i.incoming), kept: move(i.kept) };
    }),
  };
}

function recoverJournal(root: string): RecoveryOutcome {
  const file = journalPath(root);
  const ctx: Ctx = { root, step: '' };
  // A temporary is a journal update that never took effect (the rename is what publishes it).
  if (exists(`${file}.tmp`)) steps.unlink(`${file}.tmp`);
  if (!exists(file)) return { action: 'none', notes: [] };
  let journal: Journal;
  try {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown };
    if (raw.version === 1) {
      throw new WbError(
        'recovery_needed',
        'restore-journal.json was written by an older wb-backup (format 1, without checksums): this version moves no file on its word. Nothing was moved.',
        'Run the older version once (any command) to let it finish, or move the files it lists back by hand (each live file from db.pre_restore_*/<name>/), then remove the journal.',
      );
    }
    journal = rebaseJournal(JournalSchema.parse(raw), root);
  } catch (err) {
    if (err instanceof WbError) throw err;
    throw new WbError(
      'recovery_needed',
      `restore-journal.json cannot be read (${errorMessage(err).slice(0, 200)}), so an interrupted restore cannot be finished safely. Nothing was moved.`,
      'Inspect restore-journal.json and the db.pre_restore_* and db.staging_* folders by hand (every file is kept), then remove the journal.',
    );
  }
  const names = journal.items.map((i) => i.name);
  // The record is the commit point: written after the last move, removed first by a roll-back.
  const forward = readRecord(journal.pre_restore_dir)?.completed === true;
  try {
    if (forward) {
      checkReachable(ctx, journal.items, 'forward');
      for (const item of journal.items) {
        rollForwardItem(ctx, item);
        syncFolders(ctx, item);
      }
      removeSpentRecord(ctx, journal.undoes, []);
    } else {
      putBack(ctx, journal);
    }
  } catch (err) {
    throw new WbError(
      'recovery_needed',
      `An interrupted ${journal.kind}${journal.snapshot_id ? ` of ${journal.snapshot_id}` : ''} could not be ${forward ? 'completed' : 'rolled back'}: ${err instanceof Stuck ? '' : `${ctx.step} failed: `}${errorMessage(err)}. Nothing more was moved, and every copy is kept: ${describeFiles(root, journal)}.`,
      `${err instanceof Stuck ? 'Put the files named above back as the journal says (restore-journal.json lists each sha256), or move them by hand' : hintFor(err)}; then run any wb-backup command again.`,
    );
  }
  const notes: string[] = [];
  try {
    retire(ctx, journal, notes);
  } catch (err) {
    throw new WbError(
      'recovery_needed',
      `An interrupted ${journal.kind} was ${forward ? 'completed' : 'rolled back'} (the live databases are ${forward ? 'all new' : 'as before'}, checked by sha256), but its journal could not be removed (${errorMessage(err)}).`,
      `${hintFor(err)} Then run any wb-backup command again: it removes the journal.`,
    );
  }
  const done = forward ? 'completed' : 'rolled back; the live databases are as before (checked by sha256)';
  logger().warn({ kind: journal.kind, snapshot: journal.snapshot_id, databases: names }, `an interrupted ${journal.kind} was ${done}`);
  return { action: forward ? 'rolled_forward' : 'rolled_back', kind: journal.kind, snapshot_id: journal.snapshot_id, databases: names, notes };
}

/** pre_restore folders whose record is missing or not marked completed (and no journal refers to them). */
function incompleteRecordDirs(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith('db.pre_restore_'))
    .map((n) => path.join(root, n))
    .filter((dir) => readRecord(dir)?.completed !== true);
}

/**
 * Records left half-written (by a crash, or by an older wb-backup that wrote the record before its
 * journal): a folder holding no database file is removed; an older version's record whose every
 * listed file is there is adopted (marked completed); anything else is kept and reported.
 */
function settleRecords(root: string): string[] {
  if (exists(journalPath(root))) return [];
  const ctx: Ctx = { root, step: '' };
  const notes: string[] = [];
  for (const dir of incompleteRecordDirs(root)) {
    const info = readRecord(dir);
    const legacyComplete =
      info !== null && info.version === undefined && Array.isArray(info.databases) && info.databases.some((d) => d.existed) && info.databases.every((d) => !d.existed || exists(path.join(dir, d.name, d.file)));
    if (legacyComplete) {
      const adopted: PreRestoreInfo = {
        ...info,
        version: 2,
        completed: true,
        databases: info.databases.map((d) => ({ ...d, files: d.existed ? recordFiles(path.join(dir, d.name, d.file)) : {} })),
      };
      writeRecord(ctx, dir, adopted);
      continue;
    }
    if (removeEmptyRecordDir(dir)) {
      notes.push(`removed ${disp(ctx, dir)}: the record of an operation that never completed (it held no files)`);
    } else {
      notes.push(`kept ${disp(ctx, dir)}: it holds files but no record of a completed operation, so --undo will not use it; look inside before deleting it`);
    }
  }
  for (const dir of spentRecordDirs(root)) {
    if (removeEmptyRecordDir(dir)) notes.push(`removed ${disp(ctx, dir)}: a restore that was undone (it held no files any more)`);
  }
  for (const n of notes) logger().warn({}, n);
  return notes;
}

/** Folders that a completed undo put back, still present (their removal failed or was cut short). */
function spentRecordDirs(root: string): string[] {
  const spent: string[] = [];
  for (const dir of listPreRestoreDirs(root)) {
    const undone = readRecord(dir)?.undoes;
    if (undone && exists(path.join(root, undone)) && filesIn(path.join(root, undone)).length === 0) spent.push(path.join(root, undone));
  }
  return spent;
}

// ---------------------------------------------------------------------------------------------
// pre_restore folders

/** The names in the data root; none when it cannot be read (it does not exist yet). */
export function rootEntries(root: string): string[] {
  try {
    return fs.readdirSync(root);
  } catch {
    return [];
  }
}

/** db.pre_restore_<ts> folders with a completed record, newest first. */
export function listPreRestoreDirs(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith('db.pre_restore_') && readRecord(path.join(root, n))?.completed === true)
    .sort()
    .reverse()
    .map((n) => path.join(root, n));
}

/** The completed record of a pre_restore folder; throws WbError when it is missing or unreadable. */
export function readPreRestoreInfo(dir: string): PreRestoreInfo {
  const info = readRecord(dir);
  if (!info || info.completed !== true) throw new WbError('not_found', `${path.basename(dir)} has no record of a completed operation.`);
  return info;
}

/**
 * Remove safety copies beyond the newest `keep`, but only those in `named` (folder names): the ones
 * the consented plan said it would remove (planSafetyCopies). A copy that appeared since, or that the
 * plan did not list, is kept even when that leaves more than `keep`. Returns the removed folder names.
 */
export function prunePreRestoreDirs(root: string, keep: number, named: readonly string[]): string[] {
  const allowed = new Set(named);
  const old = listPreRestoreDirs(root)
    .slice(keep)
    .filter((d) => allowed.has(path.basename(d)));
  // Renamed out of sight at once (no longer a pre_restore folder --undo could pick), deleted in the
  // background: a restore should not wait while the disk frees hundreds of megabytes.
  for (const dir of old) fs.renameSync(dir, path.join(root, `${DISCARD_PREFIX}${path.basename(dir)}`));
  deleteInBackground(listDiscarded(root));
  return old.map((d) => path.basename(d));
}

const DISCARD_PREFIX = 'db.discard_';

/** Folders being deleted, including any an earlier background deletion did not finish. */
function listDiscarded(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith(DISCARD_PREFIX))
    .map((n) => path.join(root, n));
}

function deleteInBackground(dirs: string[]): void {
  if (!dirs.length) return;
  const inProcess = () => {
    for (const dir of dirs) void fs.promises.rm(dir, { recursive: true, force: true }).catch((err: unknown) => logger().warn({ dir, err }, 'could not delete an old pre_restore folder'));
  };
  if (process.platform === 'win32') return inProcess();
  // A detached rm outlives a CLI that exits right after the restore; never through a shell.
  const child = spawn('rm', ['-rf', '--', ...dirs], { detached: true, stdio: 'ignore' });
  child.on('error', inProcess);
  child.unref();
}
