import fs from 'node:fs';
import path from 'node:path';

/**
 * Called before each filesystem step of these helpers with the step's kind and path; it throws to
 * make that step fail. The swap passes fs-steps' fault gate here, so tests can fail any step.
 */
export type StepGate = (op: 'write' | 'fsync' | 'rename', target: string) => void;
const noGate: StepGate = () => undefined;

export interface DurableOptions {
  /** fault-injection hook, see StepGate */
  gate?: StepGate;
  /** throw a real I/O error from the folder's fsync instead of treating it as best effort */
  strict?: boolean;
}

/**
 * Replace `file` with `text`. Readers see the old content or the new, never a mix, and a crash or
 * power cut cannot leave it truncated: the bytes are flushed before the rename, and the folder
 * after it. On failure (a full disk) the temporary file is removed, the old content stays, and the
 * error is thrown. `tmp` defaults to a per-process name beside the file.
 */
export function writeFileAtomic(file: string, text: string | Uint8Array, tmp = `${file}.tmp-${process.pid}`, opts: DurableOptions = {}): void {
  const gate = opts.gate ?? noGate;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      gate('write', tmp);
      fs.writeFileSync(fd, text);
      gate('fsync', tmp);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    gate('rename', tmp);
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* a leftover temporary is removed by the next run's sweep or recovery */
    }
    throw err;
  }
  syncDirectory(path.dirname(file), opts);
}

/** Flush a file's bytes to the disk (fdatasync). */
export function syncFileData(file: string, opts: DurableOptions = {}): void {
  const fd = fs.openSync(file, 'r+');
  try {
    (opts.gate ?? noGate)('fsync', file);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fdatasync on an I/O thread, so several files can be flushed while the caller goes on. */
export async function syncFileDataAsync(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r+');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * Make renames and new names in `dir` survive a power cut. A folder that cannot be opened, or a
 * filesystem that refuses fsync on folders, is skipped (best effort); with `strict`, any other
 * error (a real I/O error) is thrown.
 */
export function syncDirectory(dir: string, opts: DurableOptions = {}): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    (opts.gate ?? noGate)('fsync', dir);
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const unsupported = code === 'EINVAL' || code === 'ENOTSUP' || code === 'EISDIR' || code === 'EBADF';
    if (opts.strict && !unsupported) throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a file (bytes and metadata) on an I/O thread: for a finished archive before it is renamed into place. */
export async function syncFileAsync(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** syncDirectory on an I/O thread, always best effort (see syncDirectory). */
export async function syncDirectoryAsync(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch {
    /* not supported on every platform/filesystem; the rename itself is still atomic */
  } finally {
    await handle?.close();
  }
}

/**
 * Overwrite the first `bytes.length` bytes of an existing file in place and fsync it, without
 * creating any file: the last way to record something on a completely full disk (the caller keeps
 * the length within the file's size, so no block is allocated). Throws the fs error.
 */
export function overwriteInPlace(file: string, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
