import fs from 'node:fs';
import Database from 'better-sqlite3';
import os from 'node:os';
import path from 'node:path';
import { describeHolders, findFileHolders } from '../core/lock-holder.js';
import { countRows } from '../core/sqlite-util.js';
import { hashFile } from '../core/hash.js';

export interface HotCopyRequest {
  source: string;
  dest: string;
  busyTimeoutMs: number;
}

export interface CopiedDatabase {
  kind: 'copied';
  bytes: number;
  sha256: string;
  user_version: number;
  page_size: number;
  page_count: number;
  journal_mode: string;
  rows: Record<string, number>;
}

/** The source cannot be copied (missing, not SQLite, corrupt, locked): skip it, keep the others. */
export interface SkippedDatabase {
  kind: 'skipped';
  /** why, without user paths (it is logged) */
  reason: string;
  /** the path that was looked at, `~` for the home folder, for the person reading the result (never logged) */
  looked_at?: string;
  /** another program holds a lock on it (the advice is then to let it go, not to fix the path) */
  locked?: true;
}

/** The destination failed (disk full, I/O error): the whole snapshot must fail. */
export interface FailedCopy {
  kind: 'failed';
  message: string;
  code: 'disk_full' | 'io' | 'internal';
}

export type HotCopyResult = CopiedDatabase | SkippedDatabase | FailedCopy;

interface SqliteError extends Error {
  code?: string;
}

const SOURCE_PROBLEMS: Record<string, string> = {
  SQLITE_NOTADB: 'the file is not a SQLite database',
  SQLITE_CORRUPT: 'the database is corrupt (SQLite reports a malformed image); repair or restore it',
  SQLITE_BUSY: 'the database stayed locked by another process',
  SQLITE_CANTOPEN: 'the database file could not be opened',
  SQLITE_PERM: 'permission denied reading the database',
  SQLITE_AUTH: 'access to the database was denied',
};

/**
 * VACUUM INTO gives a transactionally consistent copy from one read transaction: in WAL mode it
 * never blocks writers and, unlike the step-wise backup API, never restarts when they commit.
 */
export async function copyAndInspect(req: HotCopyRequest): Promise<HotCopyResult> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(req.source);
  } catch {
    return { kind: 'skipped', reason: 'the file does not exist', looked_at: homeShort(req.source) };
  }
  if (!stat.isFile()) return { kind: 'skipped', reason: 'the path is not a regular file', looked_at: homeShort(req.source) };

  let journalMode = 'unknown';
  let source: Database.Database | undefined;
  try {
    source = new Database(req.source, { fileMustExist: true, timeout: req.busyTimeoutMs });
    journalMode = String(source.pragma('journal_mode', { simple: true }));
    source.prepare('VACUUM INTO ?').run(req.dest);
  } catch (err) {
    source?.close();
    source = undefined;
    fs.rmSync(req.dest, { force: true });
    return classify(err as SqliteError, req);
  } finally {
    source?.close();
  }

  const copy = new Database(req.dest, { readonly: true, fileMustExist: true });
  let inspected: Omit<CopiedDatabase, 'kind' | 'bytes' | 'sha256'>;
  try {
    const rows = countRows(copy);
    inspected = {
      user_version: Number(copy.pragma('user_version', { simple: true })),
      page_size: Number(copy.pragma('page_size', { simple: true })),
      page_count: Number(copy.pragma('page_count', { simple: true })),
      journal_mode: journalMode,
      rows,
    };
  } finally {
    copy.close();
  }
  // A read-only open of a WAL-flagged copy may leave -shm/-wal behind; the snapshot is the .db alone.
  for (const suffix of ['-wal', '-shm']) fs.rmSync(req.dest + suffix, { force: true });

  const { bytes, sha256 } = await hashFile(req.dest);
  return { kind: 'copied', bytes, sha256, ...inspected };
}

/** A path as a person would type it: the home folder as `~`. */
function homeShort(p: string): string {
  const home = os.homedir();
  return home && home !== '/' && (p === home || p.startsWith(home + path.sep)) ? `~${p.slice(home.length)}` : p;
}

/**
 * Locked by another program (SQLITE_BUSY after the busy timeout, e.g. a writer holding
 * PRAGMA locking_mode=EXCLUSIVE): say so, and who holds it when /proc can tell.
 */
function lockedReason(err: SqliteError, req: HotCopyRequest): SkippedDatabase {
  const who = describeHolders(findFileHolders(req.source));
  const seconds = Math.round(req.busyTimeoutMs / 100) / 10;
  return {
    kind: 'skipped',
    locked: true,
    reason:
      `the database is locked by another program${who ? `: ${who}` : ''} (SQLite: ${err.message}; waited ${seconds} s). ` +
      'A program that keeps it locked (for example with PRAGMA locking_mode=EXCLUSIVE, or a long write transaction) blocks every reader: ' +
      'stop it or let it release the lock, then take the snapshot again',
  };
}

function classify(err: SqliteError, req: HotCopyRequest): HotCopyResult {
  const code = err.code ?? '';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_BUSY_')) return lockedReason(err, req);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT' || /ENOSPC|database or disk is full/i.test(err.message)) {
    return { kind: 'failed', code: 'disk_full', message: `the backup destination is full (${err.message})` };
  }
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_READONLY') {
    return { kind: 'failed', code: 'io', message: `writing the copy failed: ${err.message}` };
  }
  const known = SOURCE_PROBLEMS[code];
  if (known) return { kind: 'skipped', reason: `${known} (${err.message})`, ...(code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM' ? { looked_at: homeShort(req.source) } : {}) };
  if (code.startsWith('SQLITE_')) return { kind: 'skipped', reason: `SQLite refused to copy it: ${err.message}` };
  return failedCopy(err);
}

/**
 * A failure outside SQLite's own classification (a worker crash, a file step after the copy): a
 * full disk by its errno code, anything else internal. Exported for the worker and the pipeline,
 * so the code is decided where the error is seen and never recovered from the message later.
 */
export function failedCopy(err: unknown): FailedCopy {
  const message = err instanceof Error ? err.message : String(err);
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  return errno === 'ENOSPC' || errno === 'EDQUOT' ? { kind: 'failed', code: 'disk_full', message: `the backup destination is full (${message})` } : { kind: 'failed', code: 'internal', message };
}
