import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WbError } from '../core/errors.js';
import { freeSpaceNote } from '../core/size-format.js';
import { logger } from '../core/log.js';
import { displayPath, rootLayout } from './paths.js';

/** Who holds the root lock: named in every "busy" answer. */
export interface LockOwner {
  pid: number;
  host: string;
  operation: string;
  since: string;
}

export interface RootLock {
  release(): Promise<void>;
  /** set when another process took the lock over (it looked stale): the holder should stop */
  readonly compromised: Error | null;
}

const STALE_MS = 10_000; // another host's holder that has not refreshed its owner file for this long is gone
const UPDATE_MS = 2_000;

/*
 * The lock is the directory <root>/.wb-backup.lock holding exactly one owner file,
 * `owner-<pid>-<host hex>-<nonce>.json`. It is published whole: the owner file is written into a
 * private staging directory, which is then renamed onto the lock path. rename(2) of a directory
 * succeeds only when the target is absent or an EMPTY directory, so at every instant the lock is
 * either free (absent or empty) or held with its owner readable, also from the file name alone.
 * Release and takeover remove one specific owner file (the nonce makes its name unique), then
 * rmdir the emptied directory: a takeover can never remove a lock that a third process has just
 * taken, and a kill between the two steps leaves an empty directory, which is a free lock.
 */
const OWNER_RE = /^owner-(\d+)-([0-9a-f]*)-([0-9a-f]+)\.json$/;
const STAGING_RE = /\.lock\.new-(\d+)-([0-9a-f]*)-[0-9a-f]+$/;

function hostTag(host = os.hostname()): string {
  return Buffer.from(host, 'utf8').toString('hex').slice(0, 120); // bounded: a file name holds it
}

/** Test seam like restore's: WB_BACKUP_CRASH_POINT=<name> kills this process with SIGKILL there. */
function crashPoint(name: string): void {
  if (process.env.WB_BACKUP_CRASH_POINT === name) process.kill(process.pid, 'SIGKILL');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type LockState =
  | { kind: 'free' }
  /** held: `file` is the owner file's name; `owner` is null when its JSON cannot be read (the name still gives pid and host) */
  | { kind: 'held'; file: string; pid: number; sameHost: boolean; owner: LockOwner | null; mtimeMs: number }
  /** an older wb-backup (proper-lockfile) holds it: empty directory plus <lock>.owner.json beside it */
  | { kind: 'legacy'; owner: LockOwner }
  /** the lock path holds something no wb-backup writes: nobody can be named */
  | { kind: 'foreign'; why: string };

function inspect(lockDir: string): LockState {
  let entries: string[];
  try {
    entries = fs.readdirSync(lockDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'free' };
    if (code === 'ENOTDIR') return { kind: 'foreign', why: 'it is a file, not the folder wb-backup makes' };
    throw err;
  }
  if (!entries.length) {
    // Left empty by a release or takeover that was cut short: free, unless a live older version holds it.
    const legacyFile = `${lockDir}.owner.json`;
    const legacy = readJson(legacyFile);
    if (legacy) {
      const held = legacy.host === os.hostname() ? legacy.pid !== process.pid && processAlive(legacy.pid) : Date.now() - mtimeOf(lockDir) < STALE_MS;
      if (held) return { kind: 'legacy', owner: legacy };
      fs.rmSync(legacyFile, { force: true });
    }
    return { kind: 'free' };
  }
  const file = entries.find((e) => OWNER_RE.test(e));
  if (!file) return { kind: 'foreign', why: `it holds no owner record (it contains ${entries.slice(0, 3).join(', ')})` };
  const m = OWNER_RE.exec(file)!;
  const full = path.join(lockDir, file);
  return { kind: 'held', file, pid: Number(m[1]), sameHost: m[2] === hostTag(), owner: readJson(full), mtimeMs: mtimeOf(full) };
}

function readJson(file: string): LockOwner | null {
  try {
    const o = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
    return typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.operation === 'string' ? o : null;
  } catch {
    return null;
  }
}

function mtimeOf(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return Date.now(); // vanished meanwhile: treat as fresh, the next look decides
  }
}

/** Whether a held lock's owner is gone: dead pid on this host, or not refreshed for STALE_MS elsewhere. */
function ownerGone(s: Extract<LockState, { kind: 'held' }>): boolean {
  if (s.sameHost) return s.pid !== process.pid && !processAlive(s.pid);
  return Date.now() - s.mtimeMs >= STALE_MS;
}

function describeHolder(s: LockState, lockDir: string, root: string): string {
  if (s.kind === 'held') {
    if (s.owner) return `${s.owner.operation} (pid ${s.owner.pid} on ${s.owner.host}, since ${s.owner.since})`;
    const host = s.sameHost ? os.hostname() : Buffer.from(OWNER_RE.exec(s.file)![2]!, 'hex').toString('utf8');
    return `a wb-backup process whose operation is unknown (pid ${s.pid} on ${host}; its owner record ${s.file} cannot be read)`;
  }
  if (s.kind === 'legacy') return `an older wb-backup's ${s.owner.operation} (pid ${s.owner.pid} on ${s.owner.host}, since ${s.owner.since})`;
  if (s.kind === 'foreign') return `something that is not a wb-backup lock (${displayPath(root, lockDir)}: ${s.why})`;
  return 'another wb-backup process';
}

/** Remove one specific owner record (and then its emptied folder): never a lock someone took since. */
function removeOwner(lockDir: string, file: string): void {
  try {
    fs.unlinkSync(path.join(lockDir, file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // ENOENT: another process removed it first
  }
  crashPoint('lock-owner-removed');
  removeIfEmpty(lockDir);
}

function removeIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    /* taken again meanwhile (not empty) or already gone: both are fine */
  }
}

/** Staging folders of acquisitions killed before they published (same host, pid gone). */
function sweepStaging(root: string, lockDir: string): void {
  const tag = hostTag();
  const prefix = `${path.basename(lockDir)}.new-`;
  for (const name of fs.readdirSync(root)) {
    const m = name.startsWith(prefix) ? STAGING_RE.exec(name) : null;
    if (!m || m[2] !== tag || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(path.dirname(lockDir), name), { recursive: true, force: true });
  }
}


/**
 * One backup, restore or sync at a time per data root. A second caller waits up to `waitMs`, then
 * gets a "busy" WbError naming the holder (operation, pid, host, since) or saying why it cannot. A
 * holder that died (same host, pid gone) is taken over at once, whatever instant it died at; one on
 * another host once its owner record has not been refreshed for STALE_MS.
 */
export async function acquireRootLock(root: string, operation: string, waitMs: number): Promise<RootLock> {
  fs.mkdirSync(root, { recursive: true });
  const lockDir = `${rootLayout(root).lockTarget}.lock`;
  sweepStaging(root, lockDir);
  const nonce = randomBytes(8).toString('hex');
  const ownerName = `owner-${process.pid}-${hostTag()}-${nonce}.json`;
  const staging = `${lockDir}.new-${process.pid}-${hostTag()}-${nonce}`;
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), operation, since: new Date().toISOString() };
  try {
    fs.mkdirSync(staging);
    crashPoint('lock-staged');
    // A full disk fails here: the staging folder is removed below and nothing is left held.
    fs.writeFileSync(path.join(staging, ownerName), JSON.stringify(owner));
    await publishOwner(root, staging, lockDir, Date.now() + waitMs);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw lockFailure(err, root, operation);
  }
  crashPoint('lock-acquired');
  return heldLock(lockDir, ownerName);
}

/**
 * Rename the staged owner record onto the lock path until it succeeds: a free lock is taken, a
 * holder that is gone is taken over, a live one is waited for until `deadline` (epoch ms), then
 * WbError 'busy' naming it. Other fs errors are thrown as they are.
 */
async function publishOwner(root: string, staging: string, lockDir: string, deadline: number): Promise<void> {
  for (let freeSpins = 0; ; ) {
    try {
      fs.renameSync(staging, lockDir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EPERM' && code !== 'EISDIR') throw err;
      // Free yet the rename failed: released meanwhile, or a platform whose rename will not
      // replace an empty folder (removed, then retried). Failing on a free lock again and again
      // is a real error, not contention.
      if (inspect(lockDir).kind === 'free') {
        if (++freeSpins > 50) throw err;
        removeIfEmpty(lockDir);
        continue;
      }
    }
    const seen = inspect(lockDir);
    if (seen.kind === 'free') continue;
    if (seen.kind === 'held' && ownerGone(seen)) {
      // The holder died (kill -9, power loss): take it over now rather than after a timeout.
      logger().warn({ pid: seen.pid, operation: seen.owner?.operation ?? 'unknown' }, 'taking over the lock of a process that is gone');
      removeOwner(lockDir, seen.file);
      continue;
    }
    if (Date.now() >= deadline) {
      const hint = seen.kind === 'foreign' ? `If no wb-backup process is running, remove ${displayPath(root, lockDir)} and try again.` : 'Wait for it to finish and try again.';
      throw new WbError('busy', `The data root is busy: ${describeHolder(seen, lockDir, root)} holds its lock.`, hint);
    }
    await new Promise((r) => setTimeout(r, Math.min(200, Math.max(20, deadline - Date.now()))));
  }
}

/** What a failed acquisition is reported as: permission and full-disk errno become WbErrors saying what to do. */
function lockFailure(err: unknown, root: string, operation: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new WbError(
      'permission_denied',
      `wb-backup may not write in the data root ${root} (${code} while taking its lock for ${operation}). Nothing was changed.`,
      'Run it as the user who owns the data root, or give that user write access to it (and check it is not on a read-only mount).',
    );
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new WbError(
      'disk_full',
      `The disk of the data root ${root} is full${freeSpaceNote(root)}: not even the record of its lock fits (${code} while taking it for ${operation}). Nothing was changed.`,
      `Free some space on that disk (old ${path.join(root, 'db.pre_restore_*')} folders can go once you no longer need --undo), then try again.`,
    );
  }
  return err;
}

/** The held lock: refreshes its owner record (so another host sees it alive) until released. */
function heldLock(lockDir: string, ownerName: string): RootLock {
  const mine = path.join(lockDir, ownerName);
  let compromised: Error | null = null;
  // The refresh lets another host see this holder is alive; a missing record means someone took over.
  const timer = setInterval(() => {
    try {
      const now = new Date();
      fs.utimesSync(mine, now, now);
    } catch (err) {
      compromised ??= new Error(`the lock's owner record is gone (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      logger().error({ err: compromised.message }, 'root lock compromised: another process took it over');
      clearInterval(timer);
    }
  }, UPDATE_MS);
  timer.unref();
  return {
    release: async () => {
      clearInterval(timer);
      crashPoint('lock-release-start');
      try {
        removeOwner(lockDir, ownerName);
      } catch (err) {
        logger().warn({ err: (err as Error).message }, 'releasing the root lock failed');
      }
    },
    get compromised() {
      return compromised;
    },
  };
}

/** Run `fn` holding the root lock; always released, also on error. */
export async function withRootLock<T>(root: string, operation: string, waitMs: number, fn: (lock: RootLock) => Promise<T>): Promise<T> {
  const lock = await acquireRootLock(root, operation, waitMs);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
