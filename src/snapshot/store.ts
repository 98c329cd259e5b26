import fs from 'node:fs';
import path from 'node:path';
import { archiveExtension, codecFromFileName } from './codec.js';
import { WbError } from '../core/errors.js';
import { logger } from '../core/log.js';
import type { Codec } from './manifest.js';
import { rootLayout } from '../root/paths.js';
import { compareSnapshotIds, parseSnapshotId, snapshotHost } from './id.js';

/**
 * A snapshot on disk is three files in <root>/backups/:
 *   <id>.tar.zst | <id>.tar.gz   the archive (MANIFEST.json + databases/<name>/<file>)
 *   <id>.manifest.json           a copy of MANIFEST.json, readable without unpacking
 *   <id>.sha256                  sha256sum lines for the archive and the manifest copy
 *   <id>.pages                   the page-hash indexes of its databases (manifest version 2; local
 *                                only, self-checking; the next snapshot's deltas are found with it)
 * The archive is renamed into place last, so it alone says the snapshot exists.
 */
export interface LocalSnapshot {
  id: string;
  manual: boolean;
  created_at: string;
  codec: Codec;
  archivePath: string;
  manifestPath: string;
  checksumPath: string;
  /** `<id>.pages` (may not exist: version 1 and downloaded snapshots have none) */
  pagesPath: string;
  bytes: number;
}

export function snapshotFiles(backupsDir: string, id: string, codec: Codec) {
  return {
    archive: path.join(backupsDir, `${id}${archiveExtension(codec)}`),
    manifest: path.join(backupsDir, `${id}.manifest.json`),
    checksums: path.join(backupsDir, `${id}.sha256`),
    pages: path.join(backupsDir, `${id}.pages`),
    partialDir: path.join(backupsDir, `${id}.partial`),
  };
}

/** Local snapshots, newest first. Files that are not snapshots are ignored. */
export function listLocalSnapshots(root: string): LocalSnapshot[] {
  const { backupsDir } = rootLayout(root);
  const names = backupsEntries(backupsDir);
  if (!names) return [];
  const found: LocalSnapshot[] = [];
  for (const name of names) {
    const codec = codecFromFileName(name);
    if (!codec) continue;
    const id = name.slice(0, -archiveExtension(codec).length);
    const parsed = parseSnapshotId(id);
    if (!parsed) continue;
    const files = snapshotFiles(backupsDir, id, codec);
    let bytes = 0;
    try {
      bytes = fs.statSync(files.archive).size;
    } catch {
      continue;
    }
    found.push({
      id,
      manual: parsed.manual,
      created_at: parsed.time.toISOString(),
      codec,
      archivePath: files.archive,
      manifestPath: files.manifest,
      checksumPath: files.checksums,
      pagesPath: files.pages,
      bytes,
    });
  }
  return found.sort((a, b) => compareSnapshotIds(b.id, a.id));
}

/**
 * Local snapshot `id`, or for "latest" the newest of machine `host` (id.ts snapshotHost; every
 * machine's when no host is given): another machine's snapshot is restored only when named.
 * @throws WbError `not_found` naming the newest known ids
 */
export function findLocalSnapshot(root: string, id: string, host?: string): LocalSnapshot {
  const all = listLocalSnapshots(root);
  const wanted = id === 'latest' ? all.find((s) => host === undefined || snapshotHost(s.id, host) === host) : all.find((s) => s.id === id);
  if (!wanted) {
    const hint = all.length
      ? `Known snapshots (newest first): ${all.slice(0, 5).map((s) => s.id).join(', ')}${all.length > 5 ? ', …' : ''}. Use data_backup_list to see them all.`
      : 'There are no local snapshots yet: take one with data_backup (or `wb-backup now`).';
    throw new WbError('not_found', id === 'latest' ? 'There is no snapshot to use as "latest".' : `No snapshot with id "${id}" exists.`, hint);
  }
  return wanted;
}

export function deleteLocalSnapshot(root: string, id: string): void {
  const { backupsDir } = rootLayout(root);
  for (const codec of ['zstd', 'gzip'] as const) {
    const files = snapshotFiles(backupsDir, id, codec);
    // Archive first: once it is gone the snapshot no longer exists, whatever happens next.
    fs.rmSync(files.archive, { force: true });
    fs.rmSync(files.manifest, { force: true });
    fs.rmSync(files.checksums, { force: true });
    fs.rmSync(files.pages, { force: true });
  }
}

/**
 * Remove what an interrupted run left: *.partial folders and sidecars without an archive.
 * Call only while holding the root lock, so no live run's files are touched.
 */
export function removeLeftovers(root: string): string[] {
  const { backupsDir } = rootLayout(root);
  const names = backupsEntries(backupsDir);
  if (!names) return [];
  const archives = new Set(listLocalSnapshots(root).map((s) => s.id));
  const removed: string[] = [];
  for (const name of names) {
    const full = path.join(backupsDir, name);
    const partial = name.endsWith('.partial');
    const sidecar = /\.(manifest\.json|sha256|pages)$/.exec(name);
    const orphanSidecar = sidecar && !archives.has(name.slice(0, -sidecar[0].length));
    if (partial || orphanSidecar || name.includes('.tmp-')) {
      fs.rmSync(full, { recursive: true, force: true });
      removed.push(name);
    }
  }
  if (removed.length) logger().info({ removed }, 'removed leftovers of an interrupted run');
  return removed;
}

/** The names in backups/, or null when there is no such folder yet (or it cannot be read). */
function backupsEntries(backupsDir: string): string[] | null {
  try {
    return fs.readdirSync(backupsDir);
  } catch {
    return null;
  }
}
