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
   * An image of the database (`db`) that a snapshot of its chain held, already on disk (a snapshot cache
   * entry): asked for each link, newest first, with that link's snapshot id and the manifest's
   * sha256 and size of its image; return a file holding exactly that image, or null. The chain is
   * then rebuilt from a copy of that file plus the later deltas only (their archives unpacked and
   * checked as usual), instead of from the chain's first image; the rebuilt image's sha256 against
   * the target's manifest still decides, so a damaged or wrong file is refused, never exported. When
   * it is refused (or vanished meanwhile) the export runs again from the chain's first image.
   */
  reuse?: (link: { db: string; snapshotId: string; sha256: string; bytes: number }) => string | null;
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
  const { db, out, ...rest } = opts;
  const [outcome] = await exportDatabases(config, { ...rest, items: [{ db, out }] });
  if (!outcome!.ok) throw outcome!.error;
  return outcome!.result;
}

export interface ExportManyOptions extends Omit<ExportOptions, 'db' | 'out'> {
  /** the databases to export, each to its own new file; all on one file system (the work folder is beside the first) */
  items: Array<{ db: string; out: string }>;
}

/** One database of exportDatabases: its result, or why it was refused (the others are unaffected). */
export type ExportOutcome = { db: string; ok: true; result: ExportResult } | { db: string; ok: false; error: unknown };

/**
 * Several databases of one snapshot exported in one pass: each archive of their chains is checked
 * and read once for all of them (a tar.zst is read from its start for any entry, so one export per
 * database would decompress the same archives again for each). Each database gets exportDatabase's
 * checks and its own outcome, in the order of `items`.
 * @throws WbError as exportDatabase for what concerns them all: `invalid_input` (an `out` that exists,
 *   a folder missing, a database the snapshot lacks), `not_found`, `busy`; a problem of one database
 *   (its sha256, integrity, a damaged delta) is its outcome instead
 */
export async function exportDatabases(config: Config, opts: ExportManyOptions): Promise<ExportOutcome[]> {
  const items = opts.items.map((i) => ({ db: i.db, out: path.resolve(i.out) }));
  if (!items.length) return [];
  for (const { out } of items) {
    refuseExisting(out);
    if (!fs.existsSync(path.dirname(out))) throw new WbError('invalid_input', `The folder of ${out} does not exist.`, 'Create it, or choose another --out.');
  }
  return withRootLock(config.root, 'export', opts.lockWaitMs ?? config.backup.lock_wait_ms, async () => {
    const remote = opts.remote !== undefined ? opts.remote : remoteFromConfig(config);
    const snapshot = await ensureLocalSnapshot(config, opts.snapshotId, remote, opts.signal, undefined, items.map((i) => i.db));
    const manifest = await verifyManifest(snapshot);
    const entries = items.map(({ db }) => {
      const entry = manifest.databases.find((d) => d.name === db);
      if (!entry) throw new WbError('invalid_input', `Snapshot ${snapshot.id} has no database named ${db}.`, `It holds: ${manifest.databases.map((d) => d.name).join(', ') || 'no database'}.`);
      return entry;
    });
    const chains = resolveChains(config.root, snapshot, manifest, entries);
    const plans = items.map((item, i) => {
      const entry = entries[i]!;
      const links: ChainLink[] = chains.get(entry.name) ?? [{ snapshot, entry }];
      return { ...item, entry, links, start: opts.reuse ? reusableLink(links, opts.reuse) : null };
    });
    let outcomes: ExportOutcome[];
    try {
      outcomes = await rebuildMany(snapshot.id, plans);
    } catch (err) {
      // A problem of the archives they share (a checksum, a full disk): a reused image has no part
      // in it unless it vanished meanwhile; then the whole chains are read once more, else it stands.
      if (!plans.some((p) => p.start) || !reusedRefusal(err)) throw err;
      outcomes = await rebuildMany(snapshot.id, plans.map((p) => ({ ...p, start: null })));
    }
    for (let i = 0; i < plans.length; i++) {
      const p = plans[i]!;
      const o = outcomes[i]!;
      if (o.ok || !p.start || !reusedRefusal(o.error)) continue;
      // The reused image was not the one its cache entry claimed: rebuilt from the chain's first
      // image instead, with the same checks.
      logger().warn({ db: p.entry.name, reused: p.start.link.snapshot.id, why: (o.error as Error).message }, 'export: reused image refused, rebuilding from the archives');
      outcomes[i] = (await rebuildMany(snapshot.id, [{ ...p, start: null }]))[0]!;
    }
    return outcomes;
  });
}

/** What a reused image that is not what its cache entry claimed (or vanished) gives: rebuilt from the archives instead. */
function reusedRefusal(err: unknown): boolean {
  return (err instanceof WbError && (err.code === 'restore_refused' || err.code === 'archive_invalid')) || (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/** The newest link of a chain (not the target's own) whose image `reuse` has on disk. */
function reusableLink(links: readonly ChainLink[], reuse: NonNullable<ExportOptions['reuse']>): { index: number; link: ChainLink; file: string } | null {
  for (let i = links.length - 2; i >= 0; i--) {
    const link = links[i]!;
    const file = reuse({ db: link.entry.name, snapshotId: link.snapshot.id, sha256: link.entry.sha256, bytes: link.entry.bytes });
    if (file) return { index: i, link, file };
  }
  return null;
}

interface RebuildPlan {
  db: string;
  out: string;
  entry: ManifestDatabase;
  links: ChainLink[];
  /** the link whose image is already on disk (ExportOptions.reuse), or null: the chain's first image */
  start: { index: number; link: ChainLink; file: string } | null;
}

/**
 * Rebuilds each plan's database from its chain (from `start`'s image on disk when given, else from
 * the chain's first image) in one work folder beside the first `out`: every archive the chains
 * need is checked and unpacked once, for all of them. Each is then checked (sha256 against its
 * manifest, integrity_check) and linked to its `out`; its problem is its own outcome.
 * @throws what unpacking throws (an archive's checksum, a damaged archive, `disk_full`): it concerns them all
 */
async function rebuildMany(snapshotId: string, plans: readonly RebuildPlan[]): Promise<ExportOutcome[]> {
  const workParent = path.dirname(plans[0]!.out);
  // A work folder a killed export left beside --out (its process gone) is removed first.
  removeStaleOwnedTempDirs(workParent, WORK_PREFIX);
  let work: string | null = null;
  const needBytes = plans.reduce((n, p) => n + chainBytes(p.start ? p.links.slice(p.start.index + 1) : p.links) + p.entry.bytes, 0);
  try {
    const dir = (work = makeOwnedTempDir(workParent, WORK_PREFIX));
    const toUnpack = new Map<string, ChainLink[]>();
    for (const p of plans) {
      if (p.start) {
        // A copy (a reflink where the file system has them): the file reused is never written.
        const image = linkFile(dir, p.start.link);
        fs.mkdirSync(path.dirname(image), { recursive: true });
        fs.copyFileSync(p.start.file, image, fs.constants.COPYFILE_FICLONE);
        toUnpack.set(p.entry.name, p.links.slice(p.start.index + 1));
      } else {
        toUnpack.set(p.entry.name, p.links);
      }
    }
    const shas = await unpackChainArchives(toUnpack, null, dir);
    const outcomes: ExportOutcome[] = [];
    for (const p of plans) {
      outcomes.push(
        await rebuildOne(dir, snapshotId, p, shas).then(
          (result) => ({ db: p.db, ok: true as const, result }),
          (error: unknown) => ({ db: p.db, ok: false as const, error: isDiskFull(error) ? exportDiskFull(p.out, p.entry.name, needBytes) : error }),
        ),
      );
    }
    return outcomes;
  } catch (err) {
    if (isDiskFull(err)) throw exportDiskFull(plans[0]!.out, plans.map((p) => p.entry.name).join(', '), needBytes);
    throw err;
  } finally {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }
}

async function rebuildOne(dir: string, snapshotId: string, p: RebuildPlan, shas: ReadonlyMap<string, string>): Promise<ExportResult> {
  const { entry, out } = p;
  const links = p.start ? p.links.slice(p.start.index) : p.links;
  const rebuilt = path.join(dir, `rebuilt-${encodeURIComponent(entry.name)}.db`);
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
  // The rebuilt file is out now; its work copy goes at once (the next one needs the room).
  fs.rmSync(rebuilt, { force: true });
  return {
    snapshot_id: snapshotId,
    db: entry.name,
    out,
    bytes: entry.bytes,
    sha256: sha,
    stored: entry.stored === 'delta' ? 'delta' : 'image',
    chain: p.links.map((l) => l.snapshot.id),
    ...(p.start ? { reused: p.start.link.snapshot.id } : {}),
  };
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
