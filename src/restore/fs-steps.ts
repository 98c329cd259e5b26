import fs from 'node:fs';
import path from 'node:path';
import { syncDirectory, syncFileData, writeFileAtomic } from '../core/durable-file.js';
import { gate } from '../core/fault-gate.js';

/**
 * Every filesystem change made by a swap (restore, undo, import) and by its recovery goes through
 * these few functions, so tests can make any one of them fail the way a real disk does (a full
 * disk, an I/O error, a permission refused) and check that nothing is lost.
 *
 * Faults (tests only): see core/fault-gate.ts (`setFault` in-process, `WB_BACKUP_FAULT` for a child).
 */
export { recordOps, setFault, stopRecordingOps, type FaultPlan, type FsOp } from '../core/fault-gate.js';

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
