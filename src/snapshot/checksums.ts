import fs from 'node:fs';
import path from 'node:path';
import { WbError } from '../core/errors.js';
import { hashFile } from '../core/hash.js';

/** Parse sha256sum lines ("<hex>  <name>") into name -> hex. */
export function parseChecksums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (m) sums.set(m[2]!, m[1]!);
  }
  return sums;
}

/** Verify a file against the snapshot's .sha256 list; refuses when the line is missing or differs. */
export async function verifyAgainstChecksums(checksumFile: string, file: string): Promise<string> {
  let text: string;
  try {
    text = fs.readFileSync(checksumFile, 'utf8');
  } catch {
    throw new WbError('archive_invalid', `The snapshot has no checksum file (${path.basename(checksumFile)}), so its integrity cannot be verified. Nothing was restored.`, 'Use another snapshot.');
  }
  const expected = parseChecksums(text).get(path.basename(file));
  if (!expected) {
    throw new WbError('archive_invalid', `${path.basename(checksumFile)} lists no checksum for ${path.basename(file)}. Nothing was restored.`, 'Use another snapshot.');
  }
  const { sha256 } = await hashFile(file);
  if (sha256 !== expected) {
    throw new WbError(
      'archive_invalid',
      `Checksum mismatch for ${path.basename(file)}: expected ${expected.slice(0, 12)}…, found ${sha256.slice(0, 12)}… — the file is damaged. Nothing was restored.`,
      'Use another snapshot (or a remote copy of this one).',
    );
  }
  return sha256;
}

/**
 * What a file was when its checksum was last found right: inode, size and modification time (ns),
 * as decimal strings. Rewriting the file in place, replacing it or cutting it changes one of them.
 */
export interface FileIdentityStamp {
  ino: string;
  size: string;
  mtime_ns: string;
}

/** The identity stamp of `file`, or null when it cannot be stat'ed. */
export function fileStamp(file: string): FileIdentityStamp | null {
  try {
    const st = fs.statSync(file, { bigint: true });
    return { ino: String(st.ino), size: String(st.size), mtime_ns: String(st.mtimeNs) };
  } catch {
    return null;
  }
}

/** An archive found whole once: its id, its sha256 and its file's stamp at that moment. */
export interface VerifiedArchive {
  id: string;
  sha256: string;
  stamp: FileIdentityStamp;
}

/**
 * Whether `record` still vouches for the archive: the file has the same stamp, and the snapshot's
 * checksum file still names the same sha256 for it. Reads only the small checksum file.
 */
export function stillVerified(record: VerifiedArchive, checksumFile: string, archive: string): boolean {
  const now = fileStamp(archive);
  if (!now || now.ino !== record.stamp.ino || now.size !== record.stamp.size || now.mtime_ns !== record.stamp.mtime_ns) return false;
  try {
    return parseChecksums(fs.readFileSync(checksumFile, 'utf8')).get(path.basename(archive)) === record.sha256;
  } catch {
    return false;
  }
}
