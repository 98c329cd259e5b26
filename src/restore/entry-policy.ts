import path from 'node:path';

/** What a tar entry claims to be; only what the policy needs. */
export interface TarEntryHeader {
  path: string;
  type: string;
  linkpath?: string | undefined;
}

export type EntryVerdict = { ok: true; relative: string } | { ok: false; reason: string };

/**
 * Decide whether an archive entry may be written into the staging folder. Pure, so every hostile
 * shape is unit-tested: absolute paths, `..`, links, devices, and anything the manifest did not
 * announce are refused (never silently skipped: a snapshot with such an entry is not ours).
 */
export function judgeEntry(entry: TarEntryHeader, expectedFiles: ReadonlySet<string>): EntryVerdict {
  const raw = entry.path;
  if (raw.includes('\0')) return { ok: false, reason: `entry name contains a NUL byte` };
  if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw) || raw.startsWith('\\')) {
    return { ok: false, reason: `entry "${raw}" has an absolute path` };
  }
  const parts = raw.split(/[\\/]+/);
  if (parts.includes('..')) return { ok: false, reason: `entry "${raw}" climbs out with ".."` };
  if (entry.type === 'Directory') {
    return { ok: false, reason: `entry "${raw}" is a directory; snapshots hold only files` };
  }
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
    return { ok: false, reason: `entry "${raw}" is a ${entry.type === 'Link' ? 'hard' : 'symbolic'} link (to "${entry.linkpath ?? ''}")` };
  }
  if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
    return { ok: false, reason: `entry "${raw}" is a ${entry.type}, not a regular file` };
  }
  const relative = path.posix.normalize(parts.filter((p) => p !== '' && p !== '.').join('/'));
  if (!expectedFiles.has(relative)) return { ok: false, reason: `entry "${raw}" is not listed in the manifest` };
  return { ok: true, relative };
}
