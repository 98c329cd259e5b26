import fs from 'node:fs';
import os from 'node:os';

/**
 * Reading a SQLite write-ahead log as https://www.sqlite.org/walformat.html and
 * https://www.sqlite.org/fileformat2.html#walformat describe it. Pure parsing plus a frame scan
 * over an open file descriptor; nothing here takes a SQLite lock (src/pages/image.ts does).
 */

export const WAL_HEADER_BYTES = 32;
export const WAL_FRAME_HEADER_BYTES = 24;
const WAL_MAGIC = 0x377f0682; // | 1 when the checksums use big-endian words
const WAL_FORMAT_VERSION = 3007000;

/** The 32-byte WAL header. `salts` are the raw 8 bytes at offset 16 (frames must repeat them). */
export interface WalHeader {
  bigEndianChecksum: boolean;
  /** bytes per page, 512..65536 */
  pageSize: number;
  checkpointSequence: number;
  salts: Buffer;
  checksum: [number, number];
}

/**
 * SQLite's WAL checksum over `data` (length a multiple of 8), continuing from `seed`:
 * for each pair of 32-bit words (x0, x1): s0 += x0 + s1; s1 += x1 + s0 (mod 2^32).
 */
export function walChecksum(data: Buffer, bigEndian: boolean, seed: [number, number]): [number, number] {
  let s0 = seed[0];
  let s1 = seed[1];
  const n = data.length - (data.length % 8);
  if (bigEndian) {
    for (let i = 0; i < n; i += 8) {
      s0 = (s0 + data.readUInt32BE(i) + s1) >>> 0;
      s1 = (s1 + data.readUInt32BE(i + 4) + s0) >>> 0;
    }
  } else {
    for (let i = 0; i < n; i += 8) {
      s0 = (s0 + data.readUInt32LE(i) + s1) >>> 0;
      s1 = (s1 + data.readUInt32LE(i + 4) + s0) >>> 0;
    }
  }
  return [s0, s1];
}

function validPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/**
 * The WAL header in `buf` (>= 32 bytes), or null when it is not a valid one (bad magic, version,
 * page size or header checksum): SQLite then treats the log as empty, and so do we.
 */
export function parseWalHeader(buf: Buffer): WalHeader | null {
  if (buf.length < WAL_HEADER_BYTES) return null;
  const magic = buf.readUInt32BE(0);
  if ((magic & 0xfffffffe) !== WAL_MAGIC) return null;
  if (buf.readUInt32BE(4) !== WAL_FORMAT_VERSION) return null;
  const pageSize = buf.readUInt32BE(8);
  if (!validPageSize(pageSize)) return null;
  const bigEndianChecksum = (magic & 1) === 1;
  const checksum: [number, number] = [buf.readUInt32BE(24), buf.readUInt32BE(28)];
  const computed = walChecksum(buf.subarray(0, 24), bigEndianChecksum, [0, 0]);
  if (computed[0] !== checksum[0] || computed[1] !== checksum[1]) return null;
  return { bigEndianChecksum, pageSize, checkpointSequence: buf.readUInt32BE(12), salts: Buffer.from(buf.subarray(16, 24)), checksum };
}

/** The committed part of a WAL: for each page, where its newest committed frame's data starts. */
export interface WalCommitted {
  /** 1-based index of the last commit frame used; 0 when no frame is used */
  commitFrame: number;
  /** database size in pages recorded by that commit frame; 0 when no frame is used */
  dbPages: number;
  /** page number -> byte offset in the WAL file of that page's data (after the frame header) */
  pages: Map<number, number>;
  /** why the scan stopped after the last frame it accepted: 'limit', 'short', 'salt', 'checksum' or 'page 0' */
  stop: string;
}

/**
 * Walks the frames of a WAL from its first, checking each frame's salts and the cumulative
 * checksum chain, and returns the pages of the frames up to the last commit frame that is
 * valid (frames after it belong to no committed transaction). Stops at `limitBytes` (the WAL
 * length recorded while writers were held back) and, when `maxFrame` is given (the wal-index's
 * mxFrame of the reader's snapshot), at that frame, which must then be a valid commit frame.
 * Reads one frame at a time (memory: one page). Throws the fs error as is.
 */
export function scanWal(fd: number, header: WalHeader, limitBytes: number, maxFrame?: number): WalCommitted {
  const frameBytes = WAL_FRAME_HEADER_BYTES + header.pageSize;
  const buf = Buffer.allocUnsafe(frameBytes);
  let chain = header.checksum;
  const pages = new Map<number, number>();
  let pending: [number, number][] = [];
  let commitFrame = 0;
  let dbPages = 0;
  const frames = Math.floor(Math.max(0, limitBytes - WAL_HEADER_BYTES) / frameBytes);
  const last = maxFrame === undefined ? frames : Math.min(frames, maxFrame);
  let stop = 'limit';
  for (let i = 1; i <= last; i++) {
    const at = WAL_HEADER_BYTES + (i - 1) * frameBytes;
    if (fs.readSync(fd, buf, 0, frameBytes, at) !== frameBytes) {
      stop = 'short';
      break;
    }
    if (!buf.subarray(8, 16).equals(header.salts)) {
      stop = 'salt';
      break;
    }
    const pgno = buf.readUInt32BE(0);
    if (pgno === 0) {
      stop = 'page 0';
      break;
    }
    let sum = walChecksum(buf.subarray(0, 8), header.bigEndianChecksum, chain);
    sum = walChecksum(buf.subarray(WAL_FRAME_HEADER_BYTES), header.bigEndianChecksum, sum);
    if (sum[0] !== buf.readUInt32BE(16) || sum[1] !== buf.readUInt32BE(20)) {
      stop = 'checksum';
      break;
    }
    chain = sum;
    pending.push([pgno, at + WAL_FRAME_HEADER_BYTES]);
    const commitSize = buf.readUInt32BE(4);
    if (commitSize !== 0) {
      for (const [p, off] of pending) pages.set(p, off);
      pending = [];
      commitFrame = i;
      dbPages = commitSize;
    }
  }
  return { commitFrame, dbPages, pages, stop };
}

/** What the wal-index (-shm) header says, when its two copies agree. Native byte order. */
export interface WalIndexHeader {
  /** last valid frame of the log, as every new reader sees it */
  mxFrame: number;
  /** database size in pages at mxFrame */
  nPage: number;
  /** raw 8 salt bytes (as in the WAL header) */
  salts: Buffer;
  /** frames already copied back into the database file by checkpoints */
  nBackfill: number;
}

/**
 * Parses the first 136 bytes of a -shm file (two copies of the 48-byte WalIndexHdr, then the
 * WalCkptInfo whose first field is nBackfill), or null when they are not a consistent,
 * initialised header of the known version: the caller then works from the WAL alone.
 */
export function parseWalIndexHeader(buf: Buffer): WalIndexHeader | null {
  if (buf.length < 136) return null;
  if (!buf.subarray(0, 48).equals(buf.subarray(48, 96))) return null;
  const le = os.endianness() === 'LE';
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  if (u32(0) !== WAL_FORMAT_VERSION || buf[12] !== 1) return null;
  return { mxFrame: u32(16), nPage: u32(20), salts: Buffer.from(buf.subarray(32, 40)), nBackfill: u32(96) };
}
