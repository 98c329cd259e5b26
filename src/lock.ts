import fs from 'node:fs';
import os from 'node:os';
import lockfile from 'proper-lockfile';
import { WbError } from './errors.js';
import { logger } from './log.js';
import { rootLayout } from './paths.js';

interface LockOwner {
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

const STALE_MS = 10_000; // no mtime refresh for this long: the holder is gone
const UPDATE_MS = 2_000;

/** Beside the lock dir, not inside it: proper-lockfile removes the dir with rmdir, which needs it empty. */
function ownerFile(lockDir: string): string {
  return `${lockDir}.owner.json`;
}

function readOwner(lockDir: string): LockOwner | null {
  try {
    return JSON.parse(fs.readFileSync(ownerFile(lockDir), 'utf8')) as LockOwner;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One backup or restore at a time per data root. A second caller waits up to `waitMs`, then gets a
 * "busy" error naming the holder. A holder that died (same host, pid gone) is taken over at once;
 * one on another host is taken over once its lock has not been refreshed for STALE_MS.
 */
export async function acquireRootLock(root: string, operation: string, waitMs: number): Promise<RootLock> {
  fs.mkdirSync(root, { recursive: true });
  const target = rootLayout(root).lockTarget;
  const lockDir = `${target}.lock`;
  let compromised: Error | null = null;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const release = await lockfile.lock(target, {
        realpath: false,
        stale: STALE_MS,
        update: UPDATE_MS,
        retries: 0,
        onCompromised: (err) => {
          compromised = err;
          logger().error({ err: err.message }, 'root lock compromised: another process took it over');
        },
      });
      const owner: LockOwner = { pid: process.pid, host: os.hostname(), operation, since: new Date().toISOString() };
      try {
        fs.writeFileSync(ownerFile(lockDir), JSON.stringify(owner));
      } catch (err) {
        // (a full disk) Not holding a lock nobody is named in: release it, then report the error.
        fs.rmSync(ownerFile(lockDir), { force: true });
        await release().catch(() => undefined);
        throw err;
      }
      return {
        release: async () => {
          try {
            fs.rmSync(ownerFile(lockDir), { force: true });
            await release();
          } catch (err) {
            logger().warn({ err: (err as Error).message }, 'releasing the root lock failed');
          }
        },
        get compromised() {
          return compromised;
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      const owner = readOwner(lockDir);
      if (owner && owner.host === os.hostname() && owner.pid !== process.pid && !processAlive(owner.pid)) {
        // The holder died (kill -9, power loss): take it over now rather than after STALE_MS.
        logger().warn({ pid: owner.pid, operation: owner.operation }, 'taking over the lock of a process that is gone');
        takeOver(lockDir);
        continue;
      }
      if (Date.now() >= deadline) {
        const who = owner ? `${owner.operation} (pid ${owner.pid} on ${owner.host}, since ${owner.since})` : 'another wb-backup process';
        throw new WbError('busy', `The data root is busy: ${who} holds its lock.`, 'Wait for it to finish and try again.');
      }
      await new Promise((r) => setTimeout(r, Math.min(200, Math.max(20, deadline - Date.now()))));
    }
  }
}

function takeOver(lockDir: string): void {
  // Rename first so two processes racing to take over cannot both delete a fresh lock.
  const grave = `${lockDir}.dead-${process.pid}-${Date.now()}`;
  try {
    fs.renameSync(lockDir, grave);
    fs.rmSync(grave, { recursive: true, force: true });
    fs.rmSync(ownerFile(lockDir), { force: true });
  } catch {
    /* someone else took it over first; the next attempt sees their lock */
  }
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
