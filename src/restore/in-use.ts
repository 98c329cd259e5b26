import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

const COMPANIONS = ['', '-wal', '-shm', '-journal'];

/** Pids of other processes holding the database or its companions open (Linux /proc; empty elsewhere). */
function processesHolding(file: string): number[] {
  if (process.platform !== 'linux') return [];
  const wanted = new Set<string>();
  for (const suffix of COMPANIONS) {
    try {
      wanted.add(fs.realpathSync(file + suffix));
    } catch {
      /* companion absent */
    }
  }
  if (!wanted.size) return [];
  const holders = new Set<number>();
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(path.join('/proc', pid, 'fd'));
    } catch {
      continue; // gone, or not ours to see
    }
    for (const fd of fds) {
      try {
        if (wanted.has(fs.readlinkSync(path.join('/proc', pid, 'fd', fd)))) {
          holders.add(Number(pid));
          break;
        }
      } catch {
        /* fd closed meanwhile */
      }
    }
  }
  return [...holders];
}

/** A write lock attempt with a short timeout: fails while another connection is mid-transaction. */
function lockedByAnother(file: string, timeoutMs: number): boolean {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true, timeout: timeoutMs });
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return false;
  } catch (err) {
    return /SQLITE_BUSY|SQLITE_LOCKED|database is locked/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

/**
 * Why the live database looks in use, or null when it is safe to move. `probeOnly` (dry runs): only
 * look for processes holding it, never open it: opening may roll back a hot journal or checkpoint
 * the -wal, and a dry run changes nothing.
 */
export function whyInUse(file: string, timeoutMs = 300, probeOnly = false): string | null {
  if (!fs.existsSync(file)) return null;
  const holders = processesHolding(file);
  if (holders.length) return `it is open in another process (pid ${holders.join(', ')})`;
  if (!probeOnly && lockedByAnother(file, timeoutMs)) return 'another connection holds a lock on it';
  return null;
}
