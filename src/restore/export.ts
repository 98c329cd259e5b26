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
}

/**
 * `wb-backup export`: rebuilds one database of a snapshot (full or delta) into a new file, with a
 * restore's checks of the rebuilt image (every archive's checksum, the image's sha256 against the
 * manifest, PRAGMA integrity_check) and none of its effects: no live file is read or written. Runs
 * under the root lock (as a restore does) so retention cannot remove a chain archive meanwhile.
 * The result is written beside `out` in a temporary folder and linked into place only once it
 * passed, so `out` is either absent or complete.
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
    // A work folder a killed export left beside --out (its process gone) is removed first.
    removeStaleOwnedTempDirs(path.dirname(out), WORK_PREFIX);
    let work: string | null = null;
    try {
      const dir = (work = makeOwnedTempDir(path.dirname(out), WORK_PREFIX));
      const shas = await unpackChainArchives(new Map([[entry.name, links]]), null, dir);
      const rebuilt = path.join(dir, 'rebuilt.db');
      const sha = await rebuildFromChain(links, (l) => linkFile(dir, l), shas, rebuilt);
      if (sha !== entry.sha256) {
        throw new WbError('restore_refused', `Refusing to export ${entry.name}: the rebuilt image does not match the checksum in the manifest of ${snapshot.id}. Nothing was written.`, 'Export an older snapshot whose chain is whole.');
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
      return { snapshot_id: snapshot.id, db: entry.name, out, bytes: entry.bytes, sha256: sha, stored: entry.stored === 'delta' ? 'delta' : 'image', chain: links.map((l) => l.snapshot.id) };
    } catch (err) {
      if (isDiskFull(err)) throw exportDiskFull(out, entry.name, chainBytes(links) + entry.bytes);
      throw err;
    } finally {
      if (work) fs.rmSync(work, { recursive: true, force: true });
    }
  });
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
