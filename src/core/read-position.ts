import fs from 'node:fs';
import path from 'node:path';

/**
 * How far a child process has read some files, seen from outside through Linux's /proc: for each
 * open descriptor of `pid` whose link (/proc/<pid>/fd/<n>) is one of `files`, the `pos:` line of
 * /proc/<pid>/fdinfo/<n>. Used to show upload progress of a program that reports none (gh sending
 * a release asset reads the file as it sends it).
 * @param files absolute, resolved paths (fs.realpathSync), as the kernel shows them
 * @returns bytes read so far by path (the largest of several descriptors on one file); null when
 *   /proc cannot be read (not Linux, the process gone or not ours): the caller reports nothing
 */
export function readPositions(pid: number, files: ReadonlySet<string>): Map<string, number> | null {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  const found = new Map<string, number>();
  for (const fd of fds) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (!files.has(target)) continue;
      const pos = /^pos:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (pos) found.set(target, Math.max(found.get(target) ?? 0, Number(pos[1])));
    } catch {
      // a descriptor closed between the listing and the read: not counted this time
    }
  }
  return found;
}

/**
 * Poll how many bytes of `files` the process `pid` has read, every `everyMs`, and call `onBytes`
 * with the total each time it grows (a file read to some position keeps counting at its largest
 * position after it is closed, so the total never goes down). Files that vanish are skipped.
 * @returns stop(): ends the polling (call it when the process has exited)
 */
export function watchReadBytes(pid: number, files: readonly string[], onBytes: (bytes: number) => void, everyMs = 100): () => void {
  const resolved = new Set<string>();
  for (const f of files) {
    try {
      resolved.add(fs.realpathSync(path.resolve(f)));
    } catch {
      // not there: nothing to measure
    }
  }
  const best = new Map<string, number>();
  let last = 0;
  const timer = setInterval(() => {
    const now = readPositions(pid, resolved);
    if (!now) return;
    for (const [file, pos] of now) best.set(file, Math.max(best.get(file) ?? 0, pos));
    const total = [...best.values()].reduce((a, b) => a + b, 0);
    if (total > last) {
      last = total;
      onBytes(total);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
