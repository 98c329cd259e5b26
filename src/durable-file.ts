import fs from 'node:fs';
import path from 'node:path';

/**
 * Replace `file` with `text`. Readers see the old content or the new, never a mix, and a crash or
 * power cut cannot leave it truncated: the bytes are flushed before the rename, and the folder
 * after it. On failure (a full disk) the temporary file is removed, the old content stays, and the
 * error is thrown. `tmp` defaults to a per-process name beside the file.
 */
export function writeFileAtomic(file: string, text: string, tmp = `${file}.tmp-${process.pid}`): void {
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  syncDirectory(path.dirname(file));
}

/** Flush a file's bytes to the disk (fdatasync). */
export function syncFileData(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
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

/** Make renames and new names in `dir` survive a power cut; best effort where folders cannot be opened. */
export function syncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    /* some filesystems refuse fsync on a folder */
  } finally {
    fs.closeSync(fd);
  }
}
