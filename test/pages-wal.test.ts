import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseWalHeader, parseWalIndexHeader, scanWal, walChecksum, WAL_FRAME_HEADER_BYTES, WAL_HEADER_BYTES } from '../src/pages/wal.js';
import { rmrf, tempRoot } from './support/fixtures.js';

let dir: string;
beforeEach(() => {
  dir = tempRoot('wb-pages-wal-');
});
afterEach(() => rmrf(dir));

/** A WAL database with `commits` single-row commits, the log left in place; returns the open connection. */
function logWith(file: string, commits: number): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (x TEXT)');
  for (let i = 0; i < commits; i++) db.prepare('INSERT INTO t VALUES (?)').run(`row ${i} ${'q'.repeat(i * 40)}`);
  return db;
}

describe('reading the write-ahead log format', () => {
  it('parses a real WAL header and the wal-index header, which agree on salts and frame count', () => {
    const file = path.join(dir, 'a.db');
    const db = logWith(file, 12);
    const wal = fs.readFileSync(`${file}-wal`);
    const header = parseWalHeader(wal)!;
    expect(header.pageSize).toBe(4096);
    const idx = parseWalIndexHeader(fs.readFileSync(`${file}-shm`).subarray(0, 136))!;
    expect(idx.salts.equals(header.salts)).toBe(true);
    const frames = (wal.length - WAL_HEADER_BYTES) / (WAL_FRAME_HEADER_BYTES + 4096);
    expect(idx.mxFrame).toBe(frames);
    const fd = fs.openSync(`${file}-wal`, 'r');
    const scan = scanWal(fd, header, wal.length);
    fs.closeSync(fd);
    expect(scan.commitFrame).toBe(idx.mxFrame);
    expect(scan.dbPages).toBe(idx.nPage);
    expect(scan.stop).toBe('limit');
    db.close();
  });

  it('rejects a header whose checksum, magic or page size is wrong; accepts big-endian checksums', () => {
    const h = Buffer.alloc(32);
    h.writeUInt32BE(0x377f0683, 0); // big-endian checksum words
    h.writeUInt32BE(3007000, 4);
    h.writeUInt32BE(1024, 8);
    h.writeUInt32BE(7, 12);
    h.writeUInt32BE(0x11223344, 16);
    h.writeUInt32BE(0x55667788, 20);
    const [a, b] = walChecksum(h.subarray(0, 24), true, [0, 0]);
    h.writeUInt32BE(a, 24);
    h.writeUInt32BE(b, 28);
    expect(parseWalHeader(h)).toMatchObject({ bigEndianChecksum: true, pageSize: 1024, checkpointSequence: 7 });
    const bad = (f: (x: Buffer) => void) => {
      const c = Buffer.from(h);
      f(c);
      return parseWalHeader(c);
    };
    expect(bad((c) => (c[31] = c[31]! ^ 1))).toBeNull();
    expect(bad((c) => c.writeUInt32BE(0x12345678, 0))).toBeNull();
    expect(bad((c) => c.writeUInt32BE(1000, 8))).toBeNull();
    expect(parseWalHeader(h.subarray(0, 20))).toBeNull();
  });

  it('stops at the last commit before a damaged frame, as SQLite recovery would', () => {
    const file = path.join(dir, 'b.db');
    const db = logWith(file, 20);
    const wal = Buffer.from(fs.readFileSync(`${file}-wal`));
    db.close();
    const header = parseWalHeader(wal)!;
    const frame = WAL_FRAME_HEADER_BYTES + 4096;
    const frames = (wal.length - WAL_HEADER_BYTES) / frame;
    const commitFrames: number[] = [];
    for (let i = 1; i <= frames; i++) if (wal.readUInt32BE(WAL_HEADER_BYTES + (i - 1) * frame + 4) !== 0) commitFrames.push(i);
    const victim = commitFrames[10]!; // damage a byte of page data in this commit's last frame
    const at = WAL_HEADER_BYTES + (victim - 1) * frame + WAL_FRAME_HEADER_BYTES + 100;
    wal[at] = wal[at]! ^ 0xff;
    const copy = path.join(dir, 'damaged-wal');
    fs.writeFileSync(copy, wal);
    const fd = fs.openSync(copy, 'r');
    const scan = scanWal(fd, header, wal.length);
    // A bounded scan (the index's mxFrame) stops there too.
    const bounded = scanWal(fd, header, wal.length, commitFrames[5]!);
    fs.closeSync(fd);
    expect(scan.stop).toBe('checksum');
    expect(scan.commitFrame).toBe(commitFrames[9]);
    expect(bounded.commitFrame).toBe(commitFrames[5]);
  });
});
