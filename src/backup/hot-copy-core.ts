import fs from 'node:fs';
import Database from 'better-sqlite3';
import os from 'node:os';
import path from 'node:path';
import { describeHolders, findFileHolders } from '../core/lock-holder.js';
import { countRows } from '../core/sqlite-util.js';
import { WbError } from '../core/errors.js';
import { syncFileData } from '../core/durable-file.js';
import { Sha256Thread } from '../core/sha256-thread.js';
import { openPageImage, type PageImage } from '../pages/image.js';
import { decodePageIndex, encodePageIndex, hashedChunks, PageIndexBuilder } from '../pages/page-index.js';
import { writeDelta } from '../pages/delta.js';
import type { Codec } from '../snapshot/manifest.js';

/**
 * One database to copy. With `base`, the copy is a page delta against that snapshot's image of it
 * (when the page size and the file are the same and the delta stays under half the pages);
 * without, the whole image.
 */
export interface HotCopyRequest {
  source: string;
  /** where the image goes (the delta goes to `${dest}.delta`) */
  dest: string;
  busyTimeoutMs: number;
  /** the delta's own compression (it travels inside the archive) */
  codec: Codec;
  level?: number;
  base?: {
    snapshotId: string;
    db: string;
    /** the base's page-hash index, encoded (page-index.ts) */
    index: Uint8Array;
    /** the live file's identity when the base was taken; another one means the file was replaced */
    file: FileIdentity | null;
  };
  /** bytes of the image read so far, written here as the copy goes (BigInt64Array over a SharedArrayBuffer) */
  progress?: SharedArrayBuffer;
}

export interface FileIdentity {
  dev: string;
  ino: string;
}

export interface CopiedDatabase {
  kind: 'copied';
  /** bytes of the image (page_size x page_count) */
  bytes: number;
  /** sha256 of the image */
  sha256: string;
  user_version: number;
  page_size: number;
  page_count: number;
  journal_mode: string;
  rows: Record<string, number>;
  /** how the copy was kept: the whole image at dest, or a delta at `${dest}.delta` */
  stored: 'image' | 'delta';
  /** when stored whole although a base was offered: why */
  whole_because?: string;
  delta?: { bytes: number; changed_pages: number; base_sha256: string };
  /** the image's page-hash index, encoded, for the next snapshot */
  index: Uint8Array;
  file: FileIdentity;
  /** how long writers were held back while the image was opened, ms */
  writers_held_ms: number;
}

/** The source cannot be copied (missing, not SQLite, corrupt, locked): skip it, keep the others. */
export interface SkippedDatabase {
  kind: 'skipped';
  /** why, without user paths (it is logged) */
  reason: string;
  /** the path that was looked at, `~` for the home folder, for the person reading the result (never logged) */
  looked_at?: string;
  /** another program holds a lock on it (the advice is then to let it go, not to fix the path) */
  locked?: true;
}

/** The destination failed (disk full, I/O error): the whole snapshot must fail. */
export interface FailedCopy {
  kind: 'failed';
  message: string;
  code: 'disk_full' | 'io' | 'internal';
}

export type HotCopyResult = CopiedDatabase | SkippedDatabase | FailedCopy;

interface SqliteError extends Error {
  code?: string;
}

const SOURCE_PROBLEMS: Record<string, string> = {
  SQLITE_NOTADB: 'the file is not a SQLite database',
  SQLITE_CORRUPT: 'the database is corrupt (SQLite reports a malformed image); repair or restore it',
  SQLITE_BUSY: 'the database stayed locked by another process',
  SQLITE_CANTOPEN: 'the database file could not be opened',
  SQLITE_PERM: 'permission denied reading the database',
  SQLITE_AUTH: 'access to the database was denied',
};

/** A delta holding more than this share of the pages is stored as the whole image instead (a VACUUM rewrote the file). */
const MAX_DELTA_PAGE_SHARE = 0.5;

/**
 * A consistent copy of a live database as its page image (src/pages/image.ts): inside one read
 * transaction, so in WAL mode writers are held back only while the read starts, and nothing
 * restarts when they commit. Rows, user_version and the page-hash index are read from that same
 * transaction. Stored whole, or as a page delta against `req.base` when that is possible.
 */
export async function copyAndInspect(req: HotCopyRequest): Promise<HotCopyResult> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(req.source);
  } catch {
    return { kind: 'skipped', reason: 'the file does not exist', looked_at: homeShort(req.source) };
  }
  if (!stat.isFile()) return { kind: 'skipped', reason: 'the path is not a regular file', looked_at: homeShort(req.source) };
  const file: FileIdentity = { dev: String(stat.dev), ino: String(stat.ino) };
  // Opening once with SQLite first tells a file that is not a database, or is locked, the way SQLite
  // says it. Read-write, as any SQLite reader that finds a hot journal left by a crashed writer must
  // be to roll it back (as VACUUM INTO's connection did): the page image's read-only connections
  // could not, and every snapshot of that database would fail until some program opened it.
  try {
    const probe = new Database(req.source, { fileMustExist: true, timeout: req.busyTimeoutMs });
    try {
      probe.prepare('SELECT count(*) FROM sqlite_schema').pluck().get();
      probe.pragma('journal_mode', { simple: true });
    } finally {
      probe.close();
    }
  } catch (err) {
    return classify(err as SqliteError, req);
  }
  try {
    const whole = wholeBecause(req, file);
    if (!whole && req.base) {
      const delta = await takeDelta(req, req.base, file);
      if (delta.kind !== 'too_big') return delta.copied;
      return await takeImage(req, file, `the delta held ${delta.changed} of ${delta.pages} pages (more than half: the file was rewritten, by VACUUM for example)`);
    }
    return await takeImage(req, file, whole);
  } catch (err) {
    // A digest left half-fed must never be continued by the next copy.
    await dropHasher();
    fs.rmSync(req.dest, { force: true });
    fs.rmSync(`${req.dest}.delta`, { force: true });
    return classifyImageError(err, req);
  }
}

/**
 * The share of each chunk's page hashes this thread computes while copying a whole image (it also
 * reads and writes the copy; the hashing thread also takes the image's sha256), and the share the
 * hashing thread computes for a delta (this thread reads, hashes the rest and picks the changed
 * pages). Measured per 4 KiB page on the bench machine: read ~1.3 us, page hash ~5 us (a call per
 * page), image sha256 ~2.5 us: these shares keep both threads about equally busy.
 */
const IMAGE_HASH_SHARE = 0.5;
const DELTA_THREAD_SHARE = 0.4;

/** The whole-image sha256 runs on a thread of its own, beside the per-page hashing (one per copying thread, reused). */
let hasher: Sha256Thread | null = null;
function imageHasher(): Sha256Thread {
  hasher ??= new Sha256Thread();
  return hasher;
}
async function dropHasher(): Promise<void> {
  const h = hasher;
  hasher = null;
  await h?.close();
}

/** Why a database offered a base is still stored whole (file replaced), or undefined. */
function wholeBecause(req: HotCopyRequest, file: FileIdentity): string | undefined {
  if (!req.base) return undefined;
  const was = req.base.file;
  if (was && (was.dev !== file.dev || was.ino !== file.ino)) return 'the file was replaced by another one since the base snapshot';
  return undefined;
}

/** Counts bytes read into the shared progress counter. */
function counter(req: HotCopyRequest): (n: number) => void {
  if (!req.progress) return () => undefined;
  const cell = new BigInt64Array(req.progress);
  return (n) => {
    Atomics.add(cell, 0, BigInt(n));
  };
}

async function inspect(image: PageImage): Promise<Pick<CopiedDatabase, 'rows' | 'user_version'>> {
  return image.read((db) => ({ rows: countRows(db), user_version: Number(db.pragma('user_version', { simple: true })) }));
}

/** The whole image at req.dest (written as .partial, flushed, renamed). */
async function takeImage(req: HotCopyRequest, file: FileIdentity, wholeReason: string | undefined): Promise<CopiedDatabase> {
  const image = openPageImage(req.source, { busyTimeoutMs: req.busyTimeoutMs, asRollbackJournal: true });
  const partial = `${req.dest}.partial`;
  const count = counter(req);
  let fd: number | null = null;
  try {
    const whole = imageHasher();
    const builder = new PageIndexBuilder(image.pageSize, undefined, false);
    fd = fs.openSync(partial, 'w');
    let at = 0;
    // The hashing thread takes the image's sha256 and a share of the page hashes; this thread
    // reads, writes the copy and hashes the rest. Chunks are read into buffers it hands back.
    for await (const { chunk, hashes } of hashedChunks(image.chunks(undefined, (n) => whole.spare(n)), whole, image.pageSize, builder.hashWidth, IMAGE_HASH_SHARE)) {
      builder.addHashes(hashes, chunk.count);
      fs.writeSync(fd, chunk.data, 0, chunk.data.length, at);
      at += chunk.data.length;
      count(chunk.data.length);
      whole.recycle(chunk.data);
    }
    const imageSha256 = await whole.digest();
    const inspected = await inspect(image);
    const held = image.writersHeldMs;
    image.close();
    fs.closeSync(fd);
    fd = null;
    // Flushed before the rename, so the name never points at unwritten bytes (the folder is flushed when the archive is).
    syncFileData(partial);
    fs.renameSync(partial, req.dest);
    const index = builder.finish(imageSha256);
    return {
      kind: 'copied',
      bytes: at,
      sha256: index.imageSha256,
      ...inspected,
      page_size: image.pageSize,
      page_count: image.pageCount,
      journal_mode: image.journalMode,
      stored: 'image',
      ...(wholeReason ? { whole_because: wholeReason } : {}),
      index: encodePageIndex(index),
      file,
      writers_held_ms: held,
    };
  } finally {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(partial, { force: true });
    image.close();
  }
}

type DeltaOutcome = { kind: 'ok'; copied: CopiedDatabase } | { kind: 'too_big'; changed: number; pages: number };

/** The pages that differ from the base at `${req.dest}.delta`, unless they are most of the file. */
async function takeDelta(req: HotCopyRequest, base: NonNullable<HotCopyRequest['base']>, file: FileIdentity): Promise<DeltaOutcome> {
  const baseIndex = decodePageIndex(Buffer.from(base.index));
  const image = openPageImage(req.source, { busyTimeoutMs: req.busyTimeoutMs, asRollbackJournal: true });
  try {
    if (image.pageSize !== baseIndex.pageSize) {
      image.close();
      return { kind: 'ok', copied: await takeImage(req, file, `its page size changed from ${baseIndex.pageSize} to ${image.pageSize} bytes`) };
    }
    const count = counter(req);
    const hasher = imageHasher();
    const chunks = (function* () {
      for (const chunk of image.chunks(undefined, (n) => hasher.spare(n))) {
        count(chunk.data.length);
        yield chunk;
      }
    })();
    const out = `${req.dest}.delta`;
    const written = await writeDelta({ out, base: { snapshotId: base.snapshotId, db: base.db, index: baseIndex }, pageSize: image.pageSize, pageCount: image.pageCount, chunks, codec: req.codec, imageHasher: hasher, threadShare: DELTA_THREAD_SHARE, ...(req.level !== undefined ? { level: req.level } : {}) });
    if (written.changedPages > MAX_DELTA_PAGE_SHARE * Math.max(1, written.pageCount)) {
      fs.rmSync(out, { force: true });
      return { kind: 'too_big', changed: written.changedPages, pages: written.pageCount };
    }
    const inspected = await inspect(image);
    return {
      kind: 'ok',
      copied: {
        kind: 'copied',
        bytes: written.pageCount * image.pageSize,
        sha256: written.imageSha256,
        ...inspected,
        page_size: image.pageSize,
        page_count: written.pageCount,
        journal_mode: image.journalMode,
        stored: 'delta',
        delta: { bytes: written.bytes, changed_pages: written.changedPages, base_sha256: baseIndex.imageSha256 },
        index: encodePageIndex(written.index),
        file,
        writers_held_ms: image.writersHeldMs,
      },
    };
  } finally {
    image.close();
  }
}

/** An error while the image was read or written: a busy lock or a bad file is a skip; the destination's failure fails. */
function classifyImageError(err: unknown, req: HotCopyRequest): HotCopyResult {
  if (err instanceof WbError) {
    if (err.code === 'busy') return lockedReason(Object.assign(new Error(err.message), { code: 'SQLITE_BUSY' }), req);
    if (err.code === 'snapshot_failed') return { kind: 'skipped', reason: err.message };
  }
  const e = err as SqliteError;
  if (typeof e?.code === 'string' && e.code.startsWith('SQLITE_')) return classify(e, req);
  return failedCopy(err);
}

/** A path as a person would type it: the home folder as `~`. */
function homeShort(p: string): string {
  const home = os.homedir();
  return home && home !== '/' && (p === home || p.startsWith(home + path.sep)) ? `~${p.slice(home.length)}` : p;
}

/**
 * Locked by another program (SQLITE_BUSY after the busy timeout, e.g. a writer holding
 * PRAGMA locking_mode=EXCLUSIVE): say so, and who holds it when /proc can tell.
 */
function lockedReason(err: SqliteError, req: HotCopyRequest): SkippedDatabase {
  const who = describeHolders(findFileHolders(req.source));
  const seconds = Math.round(req.busyTimeoutMs / 100) / 10;
  return {
    kind: 'skipped',
    locked: true,
    reason:
      `the database is locked by another program${who ? `: ${who}` : ''} (SQLite: ${err.message}; waited ${seconds} s). ` +
      'A program that keeps it locked (for example with PRAGMA locking_mode=EXCLUSIVE, or a long write transaction) blocks every reader: ' +
      'stop it or let it release the lock, then take the snapshot again',
  };
}

function classify(err: SqliteError, req: HotCopyRequest): HotCopyResult {
  const code = err.code ?? '';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_BUSY_')) return lockedReason(err, req);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT' || /ENOSPC|database or disk is full/i.test(err.message)) {
    return { kind: 'failed', code: 'disk_full', message: `the backup destination is full (${err.message})` };
  }
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_READONLY') {
    return { kind: 'failed', code: 'io', message: `writing the copy failed: ${err.message}` };
  }
  const known = SOURCE_PROBLEMS[code];
  if (known) return { kind: 'skipped', reason: `${known} (${err.message})`, ...(code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM' ? { looked_at: homeShort(req.source) } : {}) };
  if (code.startsWith('SQLITE_')) return { kind: 'skipped', reason: `SQLite refused to copy it: ${err.message}` };
  return failedCopy(err);
}

/**
 * A failure outside SQLite's own classification (a worker crash, a file step after the copy): a
 * full disk by its errno code, anything else internal. Exported for the worker and the pipeline,
 * so the code is decided where the error is seen and never recovered from the message later.
 */
export function failedCopy(err: unknown): FailedCopy {
  const message = err instanceof Error ? err.message : String(err);
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  return errno === 'ENOSPC' || errno === 'EDQUOT' ? { kind: 'failed', code: 'disk_full', message: `the backup destination is full (${message})` } : { kind: 'failed', code: 'internal', message };
}
