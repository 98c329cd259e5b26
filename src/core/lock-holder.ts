import fs from 'node:fs';
import path from 'node:path';

/** A process that has a file open: its pid and program name (`/proc/<pid>/comm`, at most 15 characters). */
export interface FileHolder {
  pid: number;
  command: string;
}

/**
 * The other processes that have `file` (or its -wal/-shm/-journal companions) open, found by
 * scanning /proc/<pid>/fd on Linux. Empty where that cannot be known: another OS, no /proc, or
 * processes of other users this one may not inspect. Never throws.
 */
export function findFileHolders(file: string): FileHolder[] {
  if (process.platform !== 'linux') return [];
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return [];
  }
  const targets = new Set([real, `${real}-wal`, `${real}-shm`, `${real}-journal`]);
  const holders: FileHolder[] = [];
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  } catch {
    return [];
  }
  for (const pid of pids) {
    const fdDir = path.join('/proc', pid, 'fd');
    let fds: string[];
    try {
      fds = fs.readdirSync(fdDir);
    } catch {
      continue; // gone, or not ours to look at
    }
    const holds = fds.some((fd) => {
      try {
        return targets.has(fs.readlinkSync(path.join(fdDir, fd)));
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let command = '?';
    try {
      command = fs.readFileSync(path.join('/proc', pid, 'comm'), 'utf8').trim();
    } catch {
      // the process exited meanwhile: its pid still says who it was
    }
    holders.push({ pid: Number(pid), command });
  }
  return holders;
}

/** "pid 1234 (python3)" or "pids 1234 (python3), 99 (node)"; '' when none is known. */
export function describeHolders(holders: FileHolder[]): string {
  if (!holders.length) return '';
  return `${holders.length === 1 ? 'pid' : 'pids'} ${holders.map((h) => `${h.pid} (${h.command})`).join(', ')}`;
}
