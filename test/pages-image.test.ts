import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WbError } from '../src/core/errors.js';
import { openPageImage } from '../src/pages/image.js';
import { copyPageImage } from '../src/pages/image-file.js';
import { parseWalHeader, WAL_HEADER_BYTES } from '../src/pages/wal.js';
import { integrityCheck, rmrf, startWriter, tempRoot } from './support/fixtures.js';

let dir: string;
beforeEach(() => {
  dir = tempRoot('wb-pages-image-');
});
afterEach(() => rmrf(dir));

const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The image's bytes read through openPageImage, `chunkPages` at a time. */
function imageBytes(file: string, chunkPages?: number): { bytes: Buffer; walPages: number; pageCount: number } {
  const img = openPageImage(file);
  try {
    const parts = [...img.chunks(chunkPages)].map((c) => c.data);
    return { bytes: Buffer.concat(parts), walPages: img.walPages, pageCount: img.pageCount };
  } finally {
    img.close();
  }
}

/** The reference: every frame checkpointed into the main file (TRUNCATE also cuts the file to the database size). */
function checkpointedSha(file: string): string {
  const db = new Database(file);
  try {
    const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    expect(row!.busy).toBe(0);
  } finally {
    db.close();
  }
  return sha(fs.readFileSync(file));
}

/** A WAL database with `rows` rows of filler in pages of `pageSize`, its log left un-checkpointed. */
function walDb(file: string, pageSize: number, rows: number): Database.Database {
  const db = new Database(file);
  db.pragma(`page_size = ${pageSize}`);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL); CREATE INDEX filler_body ON filler(body)');
  const add = db.prepare('INSERT INTO filler(body) VALUES (?)');
  for (let b = 0; b < 5; b++) db.transaction(() => { for (let i = 0; i < rows / 5; i++) add.run(`row ${b}-${i} ${'x'.repeat((i * 37) % 300)}`); })();
  return db;
}

/** Keeps a copy of an image file as a database of its own (no -wal beside it) and checks it. */
function openImageCopy(image: string): Database.Database {
  const copy = path.join(dir, `check-${path.basename(image)}`);
  fs.copyFileSync(image, copy);
  expect(integrityCheck(copy)).toBe('ok');
  return new Database(copy, { readonly: true });
}

describe('a consistent page image of a live database', () => {
  it('under a concurrent writer: each image is a committed state (integrity ok, invariants hold), and once the writer stops it equals the checkpointed file', async () => {
    const file = path.join(dir, 'live.db');
    walDb(file, 4096, 2000).close();
    const writer = await startWriter(file);
    const seen: number[] = [];
    let result: { commits: number; errors: number } | null = null;
    try {
      for (let round = 0; round < 6; round++) {
        await sleep(30);
        // Read slowly, a few pages at a time with the event loop turning, so the writer commits and checkpoints meanwhile.
        const img = openPageImage(file);
        const out = path.join(dir, `image-${round}.db`);
        const fd = fs.openSync(out, 'w');
        try {
          for (const chunk of img.chunks(4)) {
            fs.writeSync(fd, chunk.data);
            if (chunk.first % 64 === 1) await sleep(1);
          }
        } finally {
          fs.closeSync(fd);
          img.close();
        }
        const db = openImageCopy(out);
        const n = Number(db.prepare('SELECT n FROM counter').pluck().get());
        expect(Number(db.prepare('SELECT count(*) FROM events').pluck().get())).toBe(n);
        expect(Number(db.prepare('SELECT sum(balance) FROM accounts').pluck().get())).toBe(1000 * Number(db.prepare('SELECT count(*) FROM accounts').pluck().get()));
        expect(Number(db.prepare('SELECT count(*) FROM filler').pluck().get())).toBe(2000);
        db.close();
        seen.push(n);
      }
    } finally {
      result = await writer.stop();
    }
    expect(result.errors).toBe(0);
    // Each image is a state the writer committed: counts only grow, and never past what it committed.
    expect(seen).toHaveLength(6);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(seen[seen.length - 1]!).toBeLessThanOrEqual(result.commits);
    expect(seen[seen.length - 1]!).toBeGreaterThan(0);
    // Writer stopped (its last connection checkpointed on close; write again so the log holds frames).
    const db = new Database(file);
    db.pragma('wal_autocheckpoint = 0');
    db.exec("INSERT INTO filler(body) VALUES ('after the writer')");
    const { bytes, walPages } = imageBytes(file, 7);
    expect(walPages).toBeGreaterThan(0);
    db.close();
    expect(sha(bytes)).toBe(checkpointedSha(file));
  });

  it('reads a database whose log holds uncommitted frames after the last commit (a spilled, rolled-back transaction) as its committed state', () => {
    const file = path.join(dir, 'spill.db');
    const db = walDb(file, 4096, 500);
    db.pragma('cache_size = 10'); // force the big transaction to spill pages into the log
    const before = imageBytes(file);
    db.exec('BEGIN');
    const add = db.prepare('INSERT INTO filler(body) VALUES (?)');
    for (let i = 0; i < 3000; i++) add.run(`spilled ${i} ${'y'.repeat(200)}`);
    const walBytes = fs.statSync(`${file}-wal`).size;
    db.exec('ROLLBACK');
    expect(fs.statSync(`${file}-wal`).size).toBe(walBytes); // the spilled frames are still in the file
    const after = imageBytes(file);
    expect(sha(after.bytes)).toBe(sha(before.bytes));
    db.close();
    expect(sha(after.bytes)).toBe(checkpointedSha(file));
  });

  for (const pageSize of [1024, 65536]) {
    it(`reads pages of ${pageSize} bytes: image = checkpointed file, integrity ok`, () => {
      const file = path.join(dir, `p${pageSize}.db`);
      const db = walDb(file, pageSize, 3000);
      db.exec('DELETE FROM filler WHERE id % 3 = 0'); // rewrites pages already in the log: the newest frame must win
      expect(Number(db.pragma('page_size', { simple: true }))).toBe(pageSize);
      const { bytes, walPages, pageCount } = imageBytes(file, 3);
      expect(walPages).toBeGreaterThan(0);
      expect(bytes.length).toBe(pageCount * pageSize);
      const out = path.join(dir, `p${pageSize}.img`);
      fs.writeFileSync(out, bytes);
      const copy = openImageCopy(out);
      expect(Number(copy.prepare('SELECT count(*) FROM filler').pluck().get())).toBe(2000);
      copy.close();
      db.close();
      expect(sha(bytes)).toBe(checkpointedSha(file));
    });
  }

  it('reads a database whose log was just checkpointed with TRUNCATE (an empty -wal file) as the main file', () => {
    const file = path.join(dir, 'trunc.db');
    const db = walDb(file, 4096, 800);
    db.pragma('wal_checkpoint(TRUNCATE)');
    expect(fs.statSync(`${file}-wal`).size).toBe(0);
    const { bytes, walPages } = imageBytes(file);
    expect(walPages).toBe(0);
    expect(sha(bytes)).toBe(sha(fs.readFileSync(file)));
    db.close();
  });

  it('reads a WAL database with no -wal file at all, and one whose log is only a header', () => {
    const file = path.join(dir, 'nowal.db');
    walDb(file, 4096, 300).close(); // the last connection checkpoints and deletes the log
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    const plain = imageBytes(file);
    expect(sha(plain.bytes)).toBe(sha(fs.readFileSync(file)));

    // A log that is just a valid header (as after a restart, before the first frame).
    const db = new Database(file);
    db.pragma('wal_autocheckpoint = 0');
    db.exec("INSERT INTO filler(body) VALUES ('one')");
    const header = fs.readFileSync(`${file}-wal`).subarray(0, WAL_HEADER_BYTES);
    expect(parseWalHeader(header)).not.toBeNull();
    db.pragma('wal_checkpoint(TRUNCATE)');
    fs.writeFileSync(`${file}-wal`, header);
    const headerOnly = imageBytes(file);
    expect(headerOnly.walPages).toBe(0);
    expect(sha(headerOnly.bytes)).toBe(sha(fs.readFileSync(file)));
    db.close();
  });

  it('after a log restart, ignores the stale frames of the previous cycle (other salts) that follow the new ones', () => {
    const file = path.join(dir, 'restart.db');
    const db = walDb(file, 4096, 3000);
    const oldHeader = parseWalHeader(fs.readFileSync(`${file}-wal`).subarray(0, WAL_HEADER_BYTES))!;
    const [ck] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
    expect(ck!.checkpointed).toBe(ck!.log); // everything backfilled: the next write restarts the log
    db.exec("UPDATE filler SET body = 'restarted' WHERE id % 50 = 0");
    db.exec("INSERT INTO filler(body) VALUES ('second commit of the new cycle')");
    const wal = fs.readFileSync(`${file}-wal`);
    const newHeader = parseWalHeader(wal.subarray(0, WAL_HEADER_BYTES))!;
    expect(newHeader.salts.equals(oldHeader.salts)).toBe(false);
    const frame = 24 + 4096;
    const lastFrame = Math.floor((wal.length - WAL_HEADER_BYTES) / frame);
    // The file still ends in a frame of the old cycle, with the old salts.
    expect(wal.subarray(WAL_HEADER_BYTES + (lastFrame - 1) * frame + 8, WAL_HEADER_BYTES + (lastFrame - 1) * frame + 16).equals(oldHeader.salts)).toBe(true);
    const { bytes, walPages } = imageBytes(file);
    expect(walPages).toBeGreaterThan(0);
    db.close();
    expect(sha(bytes)).toBe(checkpointedSha(file));
  });

  it('keeps its snapshot while a checkpoint runs and the log restarts cannot: frames newer than the image stay out', () => {
    const file = path.join(dir, 'ckpt.db');
    const db = walDb(file, 4096, 1000);
    const expected = imageBytes(file).bytes;
    const img = openPageImage(file);
    const chunks: Buffer[] = [];
    const it = img.chunks(2);
    chunks.push(it.next().value!.data);
    // While the image is open: new commits, then a checkpoint (it may only go as far as the image's snapshot).
    db.exec("UPDATE filler SET body = 'changed under the image'");
    db.pragma('wal_checkpoint(PASSIVE)');
    db.exec("INSERT INTO filler(body) VALUES ('more')");
    for (const c of it) chunks.push(c.data);
    img.close();
    expect(sha(Buffer.concat(chunks))).toBe(sha(expected));
    db.close();
  });

  it('reads a rollback-journal database under a shared lock: the image is the file', () => {
    const file = path.join(dir, 'journal.db');
    const db = new Database(file);
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE t (x TEXT)');
    db.transaction(() => { for (let i = 0; i < 500; i++) db.prepare('INSERT INTO t VALUES (?)').run('z'.repeat(i % 100)); })();
    const img = openPageImage(file);
    expect(img.journalMode).toBe('delete');
    const bytes = Buffer.concat([...img.chunks()].map((c) => c.data));
    img.close();
    expect(sha(bytes)).toBe(sha(fs.readFileSync(file)));
    db.close();
  });

  it('copyPageImage writes the image and its index; the index carries the image sha256', async () => {
    const file = path.join(dir, 'copy.db');
    const db = walDb(file, 4096, 700);
    const out = path.join(dir, 'copy.img');
    const copied = await copyPageImage(file, out);
    expect(copied.bytes).toBe(copied.pageCount * 4096);
    expect(copied.index.pageCount).toBe(copied.pageCount);
    expect(copied.index.imageSha256).toBe(sha(fs.readFileSync(out)));
    expect(fs.existsSync(`${out}.partial`)).toBe(false);
    db.close();
    expect(copied.index.imageSha256).toBe(checkpointedSha(file));
  });

  it('gives up with busy when another writer keeps the write lock past the timeout, and leaves nothing held', () => {
    const file = path.join(dir, 'held.db');
    const db = walDb(file, 4096, 100);
    db.exec('BEGIN IMMEDIATE');
    const err = (() => {
      try {
        openPageImage(file, { busyTimeoutMs: 50 });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('busy');
    expect((err as WbError).message).toMatch(/held\.db stayed locked by another writer/);
    expect((err as WbError).message).not.toContain(dir);
    db.exec('ROLLBACK');
    // Nothing of ours is left holding a lock: a write goes through, and the next image opens.
    db.exec("INSERT INTO filler(body) VALUES ('after')");
    const { bytes } = imageBytes(file);
    db.close();
    expect(sha(bytes)).toBe(checkpointedSha(file));
  });

  it('refuses a file that is not a database with a clear error', () => {
    const file = path.join(dir, 'not.db');
    fs.writeFileSync(file, 'hello, this is not SQLite'.repeat(100));
    expect(() => openPageImage(file)).toThrow(/consistent image|not a database/);
  });
});
