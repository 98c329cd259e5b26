import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WbError, describeError } from '../core/errors.js';
import { parseWalHeader, parseWalIndexHeader, scanWal, WAL_HEADER_BYTES, type WalHeader } from './wal.js';

/** A run of consecutive pages of the image: `data` holds `count` pages from page `first` (1-based). */
export interface PageChunk {
  first: number;
  count: number;
  /** count x pageSize bytes; a fresh buffer per chunk (or one `alloc` gave), so a consumer may keep it */
  data: Buffer;
}

/** What a page image is and what taking it cost the database's writers. */
export interface PageImageInfo {
  pageSize: number;
  pageCount: number;
  /** 'wal', or the rollback-journal mode ('delete', 'truncate', 'persist', 'memory', 'off') */
  journalMode: string;
  /** WAL frames laid over the main file's pages (0 in rollback-journal mode or for an empty log) */
  walPages: number;
  /**
   * How long writers were held back, in ms. In WAL mode: from the moment our write lock was
   * granted to its release (a writer that was committing finishes first). In rollback-journal
   * mode writers wait for the whole read (a shared lock), so this is the read's duration.
   */
  writersHeldMs: number;
}

/** An open, consistent image of a live database; read its pages once with `chunks()`, then `close()`. */
export interface PageImage extends PageImageInfo {
  /**
   * The pages 1..pageCount in order, `chunkPages` at a time (default: about 1 MiB). Memory: one
   * chunk. Throws WbError('snapshot_failed') if the log was restarted under the read (it cannot
   * while the read transaction is open; the check makes sure) or a page is missing. `alloc`
   * gives the buffer each chunk is read into (a pool of reused ones; every byte is overwritten);
   * default a new one each time.
   */
  chunks(chunkPages?: number, alloc?: (bytes: number) => Buffer): Generator<PageChunk>;
  /**
   * Runs `fn` on the connection whose read transaction fixes the image, so what it reads (row
   * counts, user_version) is exactly the image's state. Read-only; before `close()`.
   */
  read<T>(fn: (db: Database.Database) => T): T;
  close(): void;
}

export interface OpenPageImageOptions {
  /** how long to wait for the write lock (another writer's transaction), ms; default 10 000 */
  busyTimeoutMs?: number;
  /**
   * Mark the image as a rollback-journal database (header bytes 18-19 = 1, "legacy"), as VACUUM
   * INTO's copies are: opening the copy then never creates -wal/-shm files beside it (in staging,
   * in a folder restored by hand), and a restored file runs in the journal mode its program sets
   * (WAL is a per-connection choice that programs make when they open). Page 1 is the only page
   * that changes. Default false: the image is byte-identical to the checkpointed live file.
   */
  asRollbackJournal?: boolean;
}

interface WalPlan {
  header: WalHeader;
  /** sorted page numbers with their data offset in the WAL */
  pages: [number, number][];
  /** database size in pages at the last commit frame used */
  dbPages: number;
}

/**
 * Opens a consistent page image of the SQLite database `file` while it stays live, without
 * VACUUM INTO and without holding writers back for more than a moment.
 *
 * WAL mode: connection A takes the write lock (BEGIN IMMEDIATE), connection B opens a read
 * transaction, and the WAL header, its length and the wal-index header are read; then A rolls
 * back. B's snapshot is then exactly the committed state at that moment, and while B's read
 * transaction stays open the log cannot restart and no checkpoint copies frames newer than B's
 * snapshot into the main file. The image is the main file's pages with, for each page, the newest
 * committed WAL frame up to B's last commit frame laid over it (frames validated by salts and the
 * cumulative checksum chain), cut to B's page count. Rollback-journal mode: B's shared lock keeps
 * the file stable (writers wait for the read) and the file is read as it is.
 *
 * Throws WbError('busy') when the write lock cannot be had within the timeout, and
 * WbError('snapshot_failed') when the file is not a database or the log does not agree with the
 * wal-index (the caller may retry).
 */
export function openPageImage(file: string, opts: OpenPageImageOptions = {}): PageImage {
  const timeout = opts.busyTimeoutMs ?? 10_000;
  const name = path.basename(file); // messages name the file, never its whole path
  const h: Handles = { reader: null, writer: null, dbFd: null, walFd: null, shmFd: null };
  try {
    h.reader = new Database(file, { readonly: true, fileMustExist: true, timeout });
    const journalMode = String(h.reader.pragma('journal_mode', { simple: true })).toLowerCase();
    h.dbFd = fs.openSync(file, 'r');
    const fixed = journalMode === 'wal' ? fixWalSnapshot(file, h, timeout) : fixRollbackSnapshot(name, h.reader);
    const reader = h.reader;
    const pageSize = Number(reader.pragma('page_size', { simple: true }));
    const pageCount = Number(reader.pragma('page_count', { simple: true }));
    const { plan } = fixed;
    if (plan && plan.header.pageSize !== pageSize) throw new WbError('snapshot_failed', `The write-ahead log of ${name} has pages of ${plan.header.pageSize} bytes, the database ${pageSize}.`, 'Try again.');
    if (plan && plan.dbPages !== pageCount) throw new WbError('snapshot_failed', `The last commit in the write-ahead log of ${name} says ${plan.dbPages} pages, the reader sees ${pageCount}.`, 'Try again.');
    const source: ChunkSource = { name, pageSize, pageCount, plan, dbFd: h.dbFd, walFd: h.walFd, asRollbackJournal: opts.asRollbackJournal ?? false };
    const image: PageImage = {
      pageSize,
      pageCount,
      journalMode,
      walPages: plan?.pages.length ?? 0,
      writersHeldMs: fixed.writersHeldMs,
      *chunks(chunkPages?: number, alloc?: (bytes: number) => Buffer) {
        yield* pageChunks(source, chunkPages, alloc);
        if (plan) checkNotRestarted(plan, h.walFd!);
        // In rollback-journal mode writers wait for the whole read.
        if (journalMode !== 'wal') image.writersHeldMs = performance.now() - fixed.lockedAt;
      },
      read<T>(fn: (db: Database.Database) => T): T {
        if (!reader.open || !reader.inTransaction) throw new Error('The page image is closed.');
        return fn(reader);
      },
      close: () => closeHandles(h),
    };
    return image;
  } catch (err) {
    closeHandles(h);
    if (err instanceof WbError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') throw new WbError('busy', `${name} stayed locked by another writer for ${timeout} ms.`, 'Try again when the program writing it is less busy.');
    throw new WbError('snapshot_failed', `Could not read a consistent image of ${name}: ${describeError(err)}`, 'Check that it is a SQLite database and readable.');
  }
}

/** What an open image holds: its connections and the descriptors opened before their locks. */
interface Handles {
  reader: Database.Database | null;
  writer: Database.Database | null;
  dbFd: number | null;
  walFd: number | null;
  shmFd: number | null;
}

/**
 * POSIX locks belong to the process and closing ANY descriptor of a file drops them all, our
 * connections' included: our descriptors are opened once, before the locks are taken, and closed
 * only after our connections are. Safe to call twice.
 */
function closeHandles(h: Handles): void {
  if (h.reader?.open) {
    if (h.reader.inTransaction) h.reader.exec('ROLLBACK');
    h.reader.close();
  }
  if (h.writer?.open) h.writer.close();
  for (const fd of [h.dbFd, h.walFd, h.shmFd]) if (fd !== null) fs.closeSync(fd);
  h.dbFd = h.walFd = h.shmFd = null;
}

interface FixedSnapshot {
  plan: WalPlan | null;
  writersHeldMs: number;
  /** when the read's snapshot was fixed (performance.now()) */
  lockedAt: number;
}

/**
 * WAL mode: under our write lock (BEGIN IMMEDIATE on a second connection), the reader's
 * transaction starts and the log's header, length and wal-index header are recorded; then the
 * lock goes. The frames of the reader's snapshot are planned from what was recorded.
 */
function fixWalSnapshot(file: string, h: Handles, timeout: number): FixedSnapshot {
  h.walFd = openIfThere(`${file}-wal`);
  h.shmFd = openIfThere(`${file}-shm`);
  h.writer = new Database(file, { fileMustExist: true, timeout });
  h.writer.exec('BEGIN IMMEDIATE');
  const lockedAt = performance.now();
  let recorded: WalRecord;
  let writersHeldMs: number;
  try {
    h.reader!.exec('BEGIN');
    h.reader!.prepare('SELECT count(*) FROM sqlite_schema').pluck().get();
    recorded = recordWal(h.walFd, h.shmFd);
  } finally {
    h.writer.exec('ROLLBACK');
    writersHeldMs = performance.now() - lockedAt;
  }
  return { plan: planWal(h.walFd, recorded), writersHeldMs, lockedAt };
}

/** Rollback-journal mode: the reader's shared lock keeps the file as it is until the read ends. */
function fixRollbackSnapshot(name: string, reader: Database.Database): FixedSnapshot {
  const lockedAt = performance.now();
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM sqlite_schema').pluck().get();
  // Switched to WAL since we looked: the file alone would miss the log's pages.
  if (String(reader.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal') throw new WbError('snapshot_failed', `${name} switched to WAL mode while its image was being opened.`, 'Try again.');
  return { plan: null, writersHeldMs: 0, lockedAt };
}

interface ChunkSource {
  name: string;
  pageSize: number;
  pageCount: number;
  plan: WalPlan | null;
  dbFd: number;
  walFd: number | null;
  asRollbackJournal: boolean;
}

/** The image's pages in order, `chunkPages` at a time: the main file's pages with the planned WAL frames laid over them. */
function* pageChunks(src: ChunkSource, chunkPages?: number, alloc: (bytes: number) => Buffer = Buffer.allocUnsafeSlow): Generator<PageChunk> {
  const { name, pageSize, pageCount } = src;
  const per = Math.max(1, chunkPages ?? Math.max(1, Math.floor((1 << 20) / pageSize)));
  let w = 0; // next WAL entry to lay over
  const walPages = src.plan?.pages ?? [];
  for (let first = 1; first <= pageCount; first += per) {
    const count = Math.min(per, pageCount - first + 1);
    // Not zero-filled: every page is read from the file or the log, or the chunk is refused below.
    const data = alloc(count * pageSize);
    if (data.length !== count * pageSize) throw new Error(`alloc gave ${data.length} bytes for ${count * pageSize}`);
    const got = fs.readSync(src.dbFd, data, 0, data.length, (first - 1) * pageSize);
    let covered = Math.floor(got / pageSize); // pages of this chunk the main file holds
    while (w < walPages.length && walPages[w]![0] < first) w++;
    while (w < walPages.length && walPages[w]![0] < first + count) {
      const [pgno, at] = walPages[w]!;
      const off = (pgno - first) * pageSize;
      if (fs.readSync(src.walFd!, data, off, pageSize, at) !== pageSize) throw new WbError('snapshot_failed', `The write-ahead log of ${name} ended before page ${pgno}'s frame.`, 'Try again.');
      if (pgno - first === covered) covered++;
      w++;
    }
    if (covered < count) {
      throw new WbError('snapshot_failed', `Page ${first + covered} of ${name} is neither in the file nor in its write-ahead log.`, 'Try again; if it repeats, check the database with PRAGMA integrity_check.');
    }
    if (first === 1 && src.asRollbackJournal && data[18] === 2 && data[19] === 2) data[18] = data[19] = 1;
    yield { first, count, data };
  }
}

function openIfThere(f: string): number | null {
  try {
    return fs.openSync(f, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

interface WalRecord {
  header: WalHeader | null;
  bytes: number;
  mxFrame?: number;
  nBackfill?: number;
  shmSalts?: Buffer;
}

/** Under the write lock: the WAL's header and length, and the wal-index's mxFrame/nBackfill. */
function recordWal(walFd: number | null, shmFd: number | null): WalRecord {
  let header: WalHeader | null = null;
  let bytes = 0;
  if (walFd !== null) {
    bytes = fs.fstatSync(walFd).size;
    const buf = Buffer.alloc(WAL_HEADER_BYTES);
    if (fs.readSync(walFd, buf, 0, WAL_HEADER_BYTES, 0) === WAL_HEADER_BYTES) header = parseWalHeader(buf);
  }
  if (shmFd !== null) {
    const buf = Buffer.alloc(136);
    if (fs.readSync(shmFd, buf, 0, 136, 0) === 136) {
      const idx = parseWalIndexHeader(buf);
      if (idx) return { header, bytes, mxFrame: idx.mxFrame, nBackfill: idx.nBackfill, shmSalts: idx.salts };
    }
  }
  return { header, bytes };
}

/**
 * After the write lock is gone: the frames that make up the reader's snapshot. With a readable
 * wal-index, its mxFrame bounds the scan and must be the last valid commit frame; when every
 * frame up to mxFrame is already checkpointed (nBackfill = mxFrame) the main file alone is the
 * image (a checkpoint cannot write the file while our reader holds its snapshot). Without one,
 * the last valid commit frame within the recorded length is used: the write lock was held while
 * recording, so no commit was in flight.
 */
function planWal(walFd: number | null, rec: WalRecord): WalPlan | null {
  if (rec.mxFrame === 0) return null;
  if (rec.mxFrame !== undefined && rec.nBackfill !== undefined && rec.nBackfill >= rec.mxFrame) return null;
  if (!rec.header || walFd === null) {
    if (rec.mxFrame === undefined) return null; // no index and no valid log: the file is the database
    throw new WbError('snapshot_failed', `The write-ahead log has no valid header, its index says ${rec.mxFrame} frames.`, 'Try again.');
  }
  if (rec.shmSalts && !rec.shmSalts.equals(rec.header.salts)) {
    throw new WbError('snapshot_failed', 'The write-ahead log and its index disagree (a log restart was in progress).', 'Try again.');
  }
  const committed = scanWal(walFd, rec.header, rec.bytes, rec.mxFrame);
  if (rec.mxFrame !== undefined && committed.commitFrame !== rec.mxFrame) {
    throw new WbError('snapshot_failed', `The write-ahead log's last valid commit is frame ${committed.commitFrame} (the scan stopped: ${committed.stop}; ${rec.bytes} bytes recorded), its index says ${rec.mxFrame} (${rec.nBackfill} checkpointed).`, 'Try again.');
  }
  if (committed.commitFrame === 0) return null;
  const pages = [...committed.pages.entries()].sort((a, b) => a[0] - b[0]);
  return { header: rec.header, pages, dbPages: committed.dbPages };
}

/** The log's salts are what they were when recorded: no frame we read was overwritten. */
function checkNotRestarted(plan: WalPlan, fd: number): void {
  const buf = Buffer.alloc(WAL_HEADER_BYTES);
  fs.readSync(fd, buf, 0, WAL_HEADER_BYTES, 0);
  if (!buf.subarray(16, 24).equals(plan.header.salts)) {
    throw new WbError('snapshot_failed', 'The write-ahead log was restarted while its pages were read.', 'Try again.');
  }
}
