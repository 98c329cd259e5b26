import fs from 'node:fs';
import path from 'node:path';
import { syncDirectory, syncFileData, writeFileAtomic } from '../core/durable-file.js';

/**
 * Every filesystem change made by a swap (restore, undo, import) and by its recovery goes through
 * these few functions, so tests can make any one of them fail the way a real disk does (a full
 * disk, an I/O error, a permission refused) and check that nothing is lost.
 *
 * Faults (tests only): `setFault({ op: 'any', n: 7, errno: 'ENOSPC' })` in-process, or the env var
 * `WB_BACKUP_FAULT="op:N:ERRNO"` for a real child process (`op` is one of FsOp or `any`; `N` counts
 * from 1 the calls of that op, or of every op for `any`; `N+` keeps failing from the Nth call on).
 */
export type FsOp = 'rename' | 'unlink' | 'rmdir' | 'mkdir' | 'write' | 'fsync' | 'copy' | 'chmod' | 'chown';

export interface FaultPlan {
  op: FsOp | 'any';
  /** 1-based index of the call that fails */
  n: number;
  errno: string;
  /** keep failing every later call of that op as well */
  sticky?: boolean;
}

let plan: FaultPlan | null | undefined;
const counts = new Map<FsOp | 'any', number>();
let log: Array<{ op: FsOp; target: string }> | null = null;

/** In-process fault for tests; null clears it (and the env var's plan). Resets the call counts. */
export function setFault(next: FaultPlan | null): void {
  plan = next;
  counts.clear();
}

/** Start recording every operation (tests count the steps of a clean run); returns the live list. */
export function recordOps(): Array<{ op: FsOp; target: string }> {
  log = [];
  counts.clear();
  return log;
}

export function stopRecordingOps(): void {
  log = null;
}

function parseEnvFault(): FaultPlan | null {
  const raw = process.env.WB_BACKUP_FAULT;
  if (!raw) return null;
  const m = /^(any|rename|unlink|rmdir|mkdir|write|fsync|copy|chmod|chown):(\d+)(\+?):([A-Z]+)$/.exec(raw);
  if (!m) throw new Error(`WB_BACKUP_FAULT must look like op:N:ERRNO (got ${raw})`);
  return { op: m[1] as FsOp | 'any', n: Number(m[2]), sticky: m[3] === '+', errno: m[4]! };
}

const ERRNO_NUMBERS: Record<string, number> = { EPERM: 1, EIO: 5, EACCES: 13, EXDEV: 18, ENOSPC: 28, EROFS: 30 };

/** Count the call, and throw the planned fault when this is the call it names. */
function gate(op: FsOp, target: string): void {
  log?.push({ op, target });
  if (plan === undefined) plan = parseEnvFault();
  if (!plan) return;
  const key = plan.op === 'any' ? 'any' : op;
  if (plan.op !== 'any' && plan.op !== op) return;
  const n = (counts.get(key) ?? 0) + 1;
  counts.set(key, n);
  if (n === plan.n || (plan.sticky && n > plan.n)) {
    const err = new Error(`${plan.errno}: injected fault, ${op} '${path.basename(target)}'`) as NodeJS.ErrnoException;
    err.code = plan.errno;
    err.errno = -(ERRNO_NUMBERS[plan.errno] ?? 5);
    err.syscall = op;
    err.path = target;
    throw err;
  }
}

export function rename(from: string, to: string): void {
  gate('rename', from);
  fs.renameSync(from, to);
}

/** Remove one file; a file already gone is not an error. */
export function unlink(file: string): void {
  gate('unlink', file);
  fs.rmSync(file, { force: true });
}

/** Remove a folder and everything in it. Only for folders that hold copies (staging), never a pre_restore folder. */
export function removeTree(dir: string): void {
  gate('unlink', dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Remove an empty folder. */
export function rmdir(dir: string): void {
  gate('rmdir', dir);
  fs.rmdirSync(dir);
}

export function mkdir(dir: string): void {
  gate('mkdir', dir);
  fs.mkdirSync(dir, { recursive: true });
}

/** Create `dir` itself (its parent must exist); EEXIST when it already does. */
export function mkdirExclusive(dir: string): void {
  gate('mkdir', dir);
  fs.mkdirSync(dir);
}

export function copyFile(from: string, to: string): void {
  gate('copy', from);
  fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
}

export function chmod(file: string, mode: number): void {
  gate('chmod', file);
  fs.chmodSync(file, mode);
}

export function chown(file: string, uid: number, gid: number): void {
  gate('chown', file);
  fs.chownSync(file, uid, gid);
}

/** fdatasync a file's bytes (through durable-file.ts, the one place that flushes). */
export function fsyncFile(file: string): void {
  syncFileData(file, { gate });
}

/** Make renames in `dir` durable; a real I/O error is thrown (folders that cannot be flushed are skipped). */
export function fsyncDir(dir: string): void {
  syncDirectory(dir, { gate, strict: true });
}

/**
 * Replace `file` with `text` atomically and durably (durable-file.ts's writeFileAtomic, every step
 * through the fault gate). On failure the temporary is removed and the old content stays.
 */
export function writeFileDurable(file: string, text: string, tmp = `${file}.tmp`): void {
  writeFileAtomic(file, text, tmp, { gate, strict: true });
}
