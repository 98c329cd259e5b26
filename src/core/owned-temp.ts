import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Temporary work folders that name their owner, so that one left by a killed process (SIGKILL,
 * power loss: no `finally` ran) is removed by the next run instead of staying forever. The folder
 * name is `<prefix><pid>-<host as hex>-<random>`: a folder is stale when its host is this machine
 * and its pid is no longer a running process. A folder of a live process, or of another machine
 * (a shared network folder), is never touched.
 */

const MAX_HOST_HEX = 60; // bounded: the folder name must stay well under 255 bytes

function hostTag(): string {
  return Buffer.from(os.hostname(), 'utf8').toString('hex').slice(0, MAX_HOST_HEX);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/**
 * Creates a new, empty work folder `<parent>/<prefix><pid>-<host>-XXXXXX` (mkdtemp: never one that exists).
 * @returns its absolute path
 * @throws the fs error (ENOENT, EACCES, ENOSPC) as mkdtemp raises it
 */
export function makeOwnedTempDir(parent: string, prefix: string): string {
  return fs.mkdtempSync(path.join(parent, `${prefix}${process.pid}-${hostTag()}-`));
}

/**
 * Removes the work folders `<parent>/<prefix>*` that makeOwnedTempDir made for processes of this
 * machine that have ended. Best effort, never throws: a folder that cannot be removed is left for
 * the next run.
 * @returns the names removed
 */
export function removeStaleOwnedTempDirs(parent: string, prefix: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(parent).filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
  const here = hostTag();
  const removed: string[] = [];
  for (const name of names) {
    const m = /^(\d+)-([0-9a-f]*)-[^-/]+$/.exec(name.slice(prefix.length));
    if (!m || m[2] !== here) continue; // not one of ours, or another machine's
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    try {
      const full = path.join(parent, name);
      if (!fs.lstatSync(full).isDirectory()) continue;
      fs.rmSync(full, { recursive: true, force: true });
      removed.push(name);
    } catch {
      // left for the next run
    }
  }
  return removed;
}
