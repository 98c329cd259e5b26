import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { syncDirectory, syncFileData } from '../core/durable-file.js';
import { makeOwnedTempDir, removeStaleOwnedTempDirs } from '../core/owned-temp.js';
import { formatBytes } from '../core/size-format.js';
import { withRootLock } from '../root/lock.js';
import { ensureLocalSnapshot } from '../remote/fetch.js';
import { remoteFromConfig } from '../remote/registry.js';
import type { Remote } from '../remote/remote.js';
import { chainBytes, linkFile, rebuildFromChain, resolveChains, unpackChainArchives, type ChainLink } from './chain-stage.js';
import { verifyManifest } from './stage.js';
import { logger } from '../core/log.js';
import type { ManifestDatabase } from '../snapshot/manifest.js';

export interface ExportOptions {
  /** a snapshot id, or "latest" */
  snapshotId: string;
  /** the database's name in the snapshot */
  db: string;
  /** the file to create; refused when it exists */
  out: string;
  lockWaitMs?: number;
  /** where to fetch a snapshot this machine lacks; default: the configured remote */
  remote?: Remote | null;
  signal?: AbortSignal;
  /**
   * An image of the database that a snapshot of its chain held, already on disk (a snapshot cache
   * entry): asked for each link, newest first, with that link's snapshot id and the manifest's
   * sha256 and size of its image; return a file holding exactly that image, or null. The chain is
   * then rebuilt from a copy of that file plus the later deltas only (their archives unpacked and
   * checked as usual), instead of from the chain's first image; the rebuilt image's sha256 against
   * the target's manifest still decides, so a damaged or wrong file is refused, never exported. When
   * it is refused (or vanished meanwhile) the export runs again from the chain's first image.
   */
  reuse?: (link: { snapshotId: string; sha256: string; bytes: number }) => string | null;
}

export interface ExportResult {
  snapshot_id: string;
  db: string;
  /** the file written, absolute */
  out: string;
  bytes: number;
  sha256: string;
  /** how the snapshot holds it: 'image', or 'delta' (rebuilt from the archives of `chain`) */
  stored: 'image' | 'delta';
  /** the snapshots read, the one holding the image first */
  chain: string[];
  /** the snapshot whose already rebuilt image (ExportOptions.reuse) the chain started from, if any */
  reused?: string;
}

/**
 * `wb-backup export`: rebuilds one database of a snapshot (full or delta) into a new file, with a
 * restore's checks of the rebuilt image (every archive's checksum, the image's sha256 against the
 * manifest, PRAGMA integrity_check) and none of its effects: no live file is read or written. Runs
 * under the root lock (as a restore does) so retention cannot remove a chain archive meanwhile.
 * The result is written beside `out` in a temporary folder and linked into place only once it
 * passed, so `out` is either absent or complete. With `reuse`, a chain starts from an image already
 * on disk (see ExportOptions.reuse) and only the later deltas are unpacked: the same final checks.
 * @throws WbError `invalid_input` when `out` exists or its folder is missing, or the snapshot has no
 *   such database; `restore_refused` (a missing or mismatching base, a wrong sha256, integrity),
 *   `archive_invalid` (a checksum or a damaged archive or delta), `not_found` (no such snapshot)
 */
export async function exportDatabase(config: Config, opts: ExportOptions): Promise<ExportResult> {
  const out = path.resolve(opts.out);
  refuseExisting(out);
  if (!fs.existsSync(path.dirname(out))) throw new WbError('invalid_input', `The folder of ${out} does not exist.`, 'Create it, or choose another --out.');
  return withRootLock(config.root, 'export', opts.lockWaitMs ?? config.backup.lock_wait_ms, async () => {
    const remote = opts.remote !== undefined ? opts.remote : remoteFromConfig(config);
    const snapshot = await ensureLocalSnapshot(config, opts.snapshotId, remote, opts.signal, undefined, [opts.db]);
    const manifest = await verifyManifest(snapshot);
    const entry = manifest.databases.find((d) => d.name === opts.db);
    if (!entry) throw new WbError('invalid_input', `Snapshot ${snapshot.id} has no database named ${opts.db}.`, `It holds: ${manifest.databases.map((d) => d.name).join(', ') || 'no database'}.`);
    const links: ChainLink[] = resolveChains(config.root, snapshot, manifest, [entry]).get(entry.name) ?? [{ snapshot, entry }];
    const start = opts.reuse ? reusableLink(links, opts.reuse) : null;
    if (start) {
      try {
        return await rebuildInto(out, snapshot.id, entry, links, start);
      } catch (err) {
        // The reused image was not the one its cache entry claimed (or was evicted meanwhile): the
        // whole chain is rebuilt from its archives instead, with the same checks.
        if (!(err instanceof WbError && (err.code === 'restore_refused' || err.code === 'archive_invalid')) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        logger().warn({ db: entry.name, reused: start.link.snapshot.id, why: (err as Error).message }, 'export: reused image refused, rebuilding from the archives');
      }
    }
    return rebuildInto(out, snapshot.id, entry, links, null);
  });
}

/** The newest link of a chain (not the target's own) whose image `reuse` has on disk. */
function reusableLink(links: readonly ChainLink[], reuse: NonNullable<ExportOptions['reuse']>): { index: number; link: ChainLink; file: string } | null {
  for (let i = links.length - 2; i >= 0; i--) {
    const link = links[i]!;
    const file = reuse({ snapshotId: link.snapshot.id, sha256: link.entry.sha256, bytes: link.entry.bytes });
    if (file) return { index: i, link, file };
  }
  return null;
}

/**
 * Rebuilds `entry` from its chain (from `start`'s image on disk when given, else from the chain's
 * first image) in a work folder beside `out`, checks it and links it to `out`.
 */
async function rebuildInto(out: string, snapshotId: string, entry: ManifestDatabase, allLinks: readonly ChainLink[], start: { index: number; link: ChainLink; file: string } | null): Promise<ExportResult> {
  const links = start ? allLinks.slice(start.index) : allLinks;
  // A work folder a killed export left beside --out (its process gone) is removed first.
  removeStaleOwnedTempDirs(path.dirname(out), WORK_PREFIX);
  let work: string | null = null;
  try {
    const dir = (work = makeOwnedTempDir(path.dirname(out), WORK_PREFIX));
    if (start) {
      // A copy (a reflink where the file system has them): the cache entry is never written.
      const image = linkFile(dir, start.link);
      fs.mkdirSync(path.dirname(image), { recursive: true });
      fs.copyFileSync(start.file, image, fs.constants.COPYFILE_FICLONE);
    }
    const shas = await unpackChainArchives(new Map([[entry.name, links]]), start ? start.link.snapshot.id : null, dir);
    const rebuilt = path.join(dir, 'rebuilt.db');
    const sha = await rebuildFromChain(links, (l) => linkFile(dir, l), shas, rebuilt);
    if (sha !== entry.sha256) {
      throw new WbError('restore_refused', `Refusing to export ${entry.name}: the rebuilt image does not match the checksum in the manifest of ${snapshotId}. Nothing was written.`, 'Export an older snapshot whose chain is whole.');
    }
    const problem = integrityProblem(rebuilt);
    if (problem) throw new WbError('restore_refused', `Refusing to export ${entry.name}: ${problem}. Nothing was written.`, 'Export another snapshot.');
    syncFileData(rebuilt);
    try {
      // A hard link never replaces: a file created at `out` meanwhile is refused, not overwritten.
      fs.linkSync(rebuilt, out);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') refuseExisting(out);
      throw err;
    }
    syncDirectory(path.dirname(out));
    return {
      snapshot_id: snapshotId,
      db: entry.name,
      out,
      bytes: entry.bytes,
      sha256: sha,
      stored: entry.stored === 'delta' ? 'delta' : 'image',
      chain: allLinks.map((l) => l.snapshot.id),
      ...(start ? { reused: start.link.snapshot.id } : {}),
    };
  } catch (err) {
    if (isDiskFull(err)) throw exportDiskFull(out, entry.name, chainBytes(links) + entry.bytes);
    throw err;
  } finally {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The export's work folder beside --out: `.wb-export-<pid>-<host>-XXXXXX` (see core/owned-temp.ts). */
const WORK_PREFIX = '.wb-export-';

/** A full disk, as the unpacking reports it (WbError disk_full) or as a write raises it. */
function isDiskFull(err: unknown): boolean {
  if (err instanceof WbError) return err.code === 'disk_full';
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** An export's own wording of a full disk: the --out folder, what it needs, nothing of a restore. */
function exportDiskFull(out: string, db: string, needBytes: number): WbError {
  return new WbError(
    'disk_full',
    `The disk holding ${path.dirname(out)} ran out of space while the export rebuilt ${db}. Nothing was written: ${path.basename(out)} was not created and the temporary files are removed.`,
    `The export needs about ${formatBytes(needBytes)} free in that folder (the unpacked archives and the rebuilt database, beside --out). Free some space there, or choose an --out on another disk, then export again.`,
  );
}

function refuseExisting(out: string): void {
  if (fs.existsSync(out) || isLink(out)) throw new WbError('invalid_input', `${out} already exists; export never overwrites a file.`, 'Choose a new --out file (or remove that one first).');
}

function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * PRAGMA integrity_check of the rebuilt image, on a copy's own connection: opened read-only, so the
 * file keeps the bytes its sha256 was checked against (a WAL image gets its -shm beside it, in the work folder).
 */
function integrityProblem(file: string): string | null {
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const rows = (db.pragma('integrity_check', { simple: false }) as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
    return rows.length === 1 && rows[0] === 'ok' ? null : `integrity_check: ${rows.slice(0, 5).join('; ')}`;
  } catch (err) {
    return `it cannot be opened as an SQLite database (${(err as Error).message})`;
  } finally {
    db?.close();
  }
}
