import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { WbError } from '../core/errors.js';
import { displayPath } from '../root/paths.js';
import { hashFileSync } from '../core/hash.js';
import * as steps from './fs-steps.js';
import { rootLayout } from '../root/paths.js';

/**
 * The swap's journal (restore-journal.json): what a swap records about every file it moves (size
 * and sha256, by role), how files are hashed and compared with those records, and the journal's
 * writing. The journal is what lets a crash at any instant be completed or rolled back. See swap.ts
 * for the order of a swap, and docs/restore.md.
 */

/** The files of one database: the main file and its companions (the -shm is scratch: not hashed). */
export const ROLES = ['', '-wal', '-journal', '-shm'] as const;
export type Role = (typeof ROLES)[number];

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
export type FileRec = z.infer<typeof FileRecSchema>;
/** role ('' for the main file, '-wal', ...) -> size and sha256; a role that is absent had no file */
const FilesSchema = z.record(z.string(), FileRecSchema);
export type Files = z.infer<typeof FilesSchema>;

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
export type JournalItem = z.infer<typeof JournalItemSchema>;

export const JournalSchema = z.object({
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
export type Journal = z.infer<typeof JournalSchema>;

export function journalPath(root: string): string {
  return rootLayout(root).restoreJournal;
}

/** Test seam for crash-safety tests: the real process kills itself with SIGKILL at a named point. */
export function crashPoint(name: string): void {
  if (process.env.WB_BACKUP_CRASH_POINT === name) process.kill(process.pid, 'SIGKILL');
}

export function exists(file: string): boolean {
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

/** Forgets the hashes remembered so far: each swap or recovery starts by reading the files afresh. */
export function clearHashCache(): void {
  hashCache.clear();
}

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

export function recordFiles(base: string | null): Files {
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
export function matches(file: string, rec: FileRec | undefined): boolean {
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
export class Stuck extends Error {}

export interface Ctx {
  root: string;
  /** what is being done, for the message when it fails */
  step: string;
}

/**
 * A path in a swap's messages: relative to the root inside it, else in full. These messages say what
 * is where so that a person can act on them: "a.db" alone would not say which folder holds it.
 */
export const disp = (ctx: Ctx, p: string) => {
  const shown = displayPath(ctx.root, p);
  return shown === path.basename(p) && path.resolve(ctx.root, shown) !== path.resolve(p) ? path.resolve(p) : shown;
};

export function writeJournal(ctx: Ctx, journal: Journal): void {
  ctx.step = 'writing the journal (restore-journal.json)';
  steps.writeFileDurable(journalPath(ctx.root), `${JSON.stringify(journal, null, 2)}\n`);
}
