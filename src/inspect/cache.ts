import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../root/config.js';
import { rootLayout } from '../root/paths.js';
import { encodeSegment } from '../root/names.js';
import { syncDirectory, writeFileAtomic } from '../core/durable-file.js';
import { logger } from '../core/log.js';
import { hashFile } from '../core/hash.js';
import { listLocalSnapshots, findLocalSnapshot } from '../snapshot/store.js';
import { verifyManifest } from '../restore/stage.js';
import { exportDatabases } from '../restore/export.js';

/** What a cache entry records beside its image: the manifest's word for it, checked on every reuse. */
interface CacheMeta {
  snapshot_id: string;
  db: string;
  sha256: string;
  bytes: number;
}

export interface CachedDatabase {
  snapshot_id: string;
  db: string;
  /** the rebuilt image: open it read-only; it stays until evicted (least recently used first) */
  file: string;
  bytes: number;
  sha256: string;
  /** true when it was rebuilt by this call, false when an earlier rebuild was reused */
  rebuilt: boolean;
  /** when rebuilt from the cached image of an earlier snapshot of its chain: that snapshot's id */
  reused_from?: string;
}

const IMAGE = 'image.db';
/** How long a rebuild waits for the root lock (another rebuild, a snapshot being taken). */
const CACHE_LOCK_WAIT_MS = 60_000;
const META = 'meta.json';

/** The snapshot id "latest" stands for (the newest local one), or the id itself. */
export function resolveSnapshotId(root: string, id: string): string {
  if (id !== 'latest') return id;
  return listLocalSnapshots(root)[0]?.id ?? id;
}

function entryDir(root: string, id: string, db: string): string {
  return path.join(rootLayout(root).snapshotCacheDir, encodeSegment(id), encodeSegment(db));
}

/** The manifest's sha256 and size of `db` in a local snapshot, or null when this machine lacks the snapshot or that database. */
async function manifestEntry(root: string, id: string, db: string): Promise<{ sha256: string; bytes: number } | null> {
  if (!listLocalSnapshots(root).some((s) => s.id === id)) return null;
  const manifest = await verifyManifest(findLocalSnapshot(root, id));
  const e = manifest.databases.find((d) => d.name === db);
  return e ? { sha256: e.sha256, bytes: e.bytes } : null;
}

function readMeta(dir: string): CacheMeta | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, META), 'utf8')) as CacheMeta;
  } catch {
    return null;
  }
}

/**
 * One database of a snapshot (full or delta chain) as a verified file under
 * <root>/cache/snapshots/<id>/<db>/image.db, rebuilt by the export pipeline (src/restore/export.ts:
 * archive checksums, the image's sha256 against the manifest, integrity_check) the first time and
 * reused afterwards while the manifest's sha256 and size still match what was recorded. A database
 * stored as a delta starts from the cached image of the newest earlier snapshot of its chain when
 * the cache has one (ExportOptions.reuse), so the second side of a diff along one chain costs a
 * copy plus its deltas, not a second rebuild of the chain. No live file is read or written.
 *
 * Safe when several processes ask at once or one is killed: each builds in a private
 * `.build-<pid>-<random>` folder renamed into place whole, so an entry is complete or absent;
 * leftovers of dead processes are removed. The cache is then cut to `inspect.cache_max_mb`,
 * least recently used first, never the entries named in `keep`.
 * `alongWith`: databases of the same snapshot the caller will ask for next (a diff's other
 * databases); those the cache lacks are rebuilt in the same pass over the archives and cached too.
 * @throws WbError as exportDatabase (`not_found`, `invalid_input` for a database the snapshot lacks, `restore_refused`, `archive_invalid`, `busy`)
 */
export async function cachedSnapshotDatabase(config: Config, snapshotId: string, db: string, opts: { signal?: AbortSignal; keep?: string[]; verify?: boolean; alongWith?: readonly string[] } = {}): Promise<CachedDatabase> {
  const root = config.root;
  const id = resolveSnapshotId(root, snapshotId);
  const expected = await manifestEntry(root, id, db);
  const dir = entryDir(root, id, db);
  const meta = readMeta(dir);
  const image = path.join(dir, IMAGE);
  // A -wal or -journal beside the image means someone opened it to write: it is rebuilt.
  const untouched = () => !['-wal', '-journal'].some((x) => fs.existsSync(image + x));
  // verify (a recovery, which writes these values into live data): the bytes are hashed against the manifest, not trusted by size.
  const intact = async () => !opts.verify || (await hashFile(image).catch(() => null))?.sha256 === expected!.sha256;
  if (expected && meta && meta.sha256 === expected.sha256 && fileSize(image) === expected.bytes && untouched() && (await intact())) {
    touch(dir);
    return { snapshot_id: id, db, file: path.join(dir, IMAGE), bytes: meta.bytes, sha256: meta.sha256, rebuilt: false };
  }
  // The other databases the caller will ask for next, rebuilt in the same pass over the archives
  // (each archive is decompressed from its start whatever entry is wanted): those this snapshot
  // holds and the cache lacks.
  const along: string[] = [];
  for (const other of new Set(opts.alongWith ?? [])) {
    if (other === db) continue;
    const e = await manifestEntry(root, id, other);
    const m = readMeta(entryDir(root, id, other));
    if (e && !(m && m.sha256 === e.sha256 && fileSize(path.join(entryDir(root, id, other), IMAGE)) === e.bytes)) along.push(other);
  }
  const cacheDir = rootLayout(root).snapshotCacheDir;
  fs.mkdirSync(cacheDir, { recursive: true });
  sweepBuilds(cacheDir);
  const build = path.join(cacheDir, `.build-${process.pid}-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(build);
  try {
    // The rebuild holds the root lock (as a restore does); a concurrent diff or a backup in progress is waited for, not refused.
    const lockWaitMs = Math.max(config.backup.lock_wait_ms, CACHE_LOCK_WAIT_MS);
    const names = [db, ...along];
    const items = names.map((name, i) => {
      const sub = path.join(build, String(i));
      fs.mkdirSync(sub);
      return { db: name, out: path.join(sub, IMAGE) };
    });
    // A delta is rebuilt from the cached image of an earlier snapshot of its chain when there is one
    // (a diff of two snapshots of one chain rebuilds the older first): only the deltas after it are
    // unpacked. The result is checked as any export (sha256 against the manifest, integrity_check).
    const reuse = (link: { db: string; snapshotId: string; sha256: string; bytes: number }): string | null => {
      const d = entryDir(root, link.snapshotId, link.db);
      const m = readMeta(d);
      const file = path.join(d, IMAGE);
      return m && m.sha256 === link.sha256 && fileSize(file) === link.bytes ? file : null;
    };
    const outcomes = await exportDatabases(config, { snapshotId: id, items, lockWaitMs, reuse, ...(opts.signal ? { signal: opts.signal } : {}) });
    const finals: string[] = [];
    let asked: CachedDatabase | null = null;
    outcomes.forEach((o, i) => {
      if (!o.ok) {
        if (i === 0) throw o.error;
        return; // one asked for later: that call rebuilds it alone and reports its problem
      }
      const result = o.result;
      const sub = path.dirname(items[i]!.out);
      writeFileAtomic(path.join(sub, META), JSON.stringify({ snapshot_id: result.snapshot_id, db: result.db, sha256: result.sha256, bytes: result.bytes } satisfies CacheMeta));
      const final = entryDir(root, result.snapshot_id, result.db);
      fs.mkdirSync(path.dirname(final), { recursive: true });
      // A stale or damaged entry is moved aside first; a folder rename only lands on an absent or empty folder.
      if (fs.existsSync(final)) retire(cacheDir, final);
      try {
        fs.renameSync(sub, final);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        // Another process put the same verified image there meanwhile: use theirs.
      }
      syncDirectory(path.dirname(final));
      finals.push(final);
      if (i === 0) asked = { snapshot_id: result.snapshot_id, db, file: path.join(final, IMAGE), bytes: result.bytes, sha256: result.sha256, rebuilt: true, ...(result.reused ? { reused_from: result.reused } : {}) };
    });
    evict(config, [...(opts.keep ?? []), ...finals]);
    return asked!;
  } finally {
    fs.rmSync(build, { recursive: true, force: true });
  }
}

/** The folder of a cached file (for `keep`). */
export function cacheEntryOf(file: string): string {
  return path.dirname(file);
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return -1;
  }
}

function touch(dir: string): void {
  const now = new Date();
  try {
    fs.utimesSync(dir, now, now);
  } catch {
    /* a read-only cache still serves; only the eviction order suffers */
  }
}

/** Moves an entry out of sight (atomically), then removes it: a reader sees it whole or not at all. */
function retire(cacheDir: string, dir: string): void {
  const aside = path.join(cacheDir, `.evict-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    fs.renameSync(dir, aside);
  } catch {
    return;
  }
  fs.rmSync(aside, { recursive: true, force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Build and eviction folders of processes that are gone (killed mid-build). */
function sweepBuilds(cacheDir: string): void {
  for (const name of safeList(cacheDir)) {
    const m = /^\.(?:build|evict)-(\d+)-[0-9a-f]+$/.exec(name);
    if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(cacheDir, name), { recursive: true, force: true });
  }
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const name of safeList(dir)) total += Math.max(0, fileSize(path.join(dir, name)));
  return total;
}

/** Cuts the cache to its size, least recently used entries first (never those in `keep`). */
export function evict(config: Config, keep: string[]): void {
  const cacheDir = rootLayout(config.root).snapshotCacheDir;
  const max = config.inspect.cache_max_mb * 1024 * 1024;
  const entries: Array<{ dir: string; bytes: number; used: number }> = [];
  for (const idSeg of safeList(cacheDir)) {
    if (idSeg.startsWith('.')) continue;
    const idDir = path.join(cacheDir, idSeg);
    for (const dbSeg of safeList(idDir)) {
      const dir = path.join(idDir, dbSeg);
      try {
        entries.push({ dir, bytes: folderBytes(dir), used: fs.statSync(dir).mtimeMs });
      } catch {
        /* removed meanwhile */
      }
    }
  }
  let total = entries.reduce((s, e) => s + e.bytes, 0);
  const kept = new Set(keep.map((k) => path.resolve(k)));
  for (const e of entries.sort((x, y) => x.used - y.used)) {
    if (total <= max) break;
    if (kept.has(path.resolve(e.dir))) continue;
    retire(cacheDir, e.dir);
    total -= e.bytes;
    logger().info({ evicted: path.relative(cacheDir, e.dir) }, 'snapshot cache entry evicted');
    const parent = path.dirname(e.dir);
    if (safeList(parent).length === 0) fs.rmSync(parent, { recursive: true, force: true });
  }
}
