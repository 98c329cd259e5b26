import { createHash } from 'node:crypto';
import fs from 'node:fs';

/** Size in bytes and lowercase hex sha256 of a file. */
export interface FileDigest {
  bytes: number;
  sha256: string;
}

const CHUNK = 1 << 20;

/** sha256 of a file streamed in 1 MiB chunks (does not block the event loop between chunks). */
export async function hashFile(file: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: CHUNK })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * sha256 of a file read synchronously in 1 MiB chunks: for journaled steps that must not yield
 * between reading a file and acting on it. Throws the fs error (ENOENT, EACCES, EIO) as is.
 */
export function hashFileSync(file: string): FileDigest {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  let bytes = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { bytes, sha256: hash.digest('hex') };
}
